/**
 * A block request's `cmd_flags` as the one-to-four letter "rwbs" code that
 * biosnoop prints in its T column (libbpf-tools' blk_fill_rwbs): `F` for a
 * preflush, then the operation (`R`, `W`, `D`, `DE`, `F`, or `N` for any
 * other), then `F` (FUA), `A` (read-ahead), `S` (sync), `M` (metadata).
 *
 * Operation codes and flag bits come from the running kernel's BTF
 * (`enum req_op`, `enum req_flag_bits`), which has renumbered them over the
 * years; the Linux 5.x-6.x values are the fallback.
 *
 * @example
 * ```ts ignore
 * import { Btf } from "./btf.ts";
 * import { BlockRwbs } from "./block_rwbs.ts";
 * new BlockRwbs(Btf.vmlinux()).format(0x801); // "WS": a sync write
 * ```
 *
 * @module
 */
import type { Btf } from "./btf.ts";

/** REQ_OP_MASK: the low 8 bits of cmd_flags are the operation. */
const OP_MASK = 0xff;

/** The operations with their own letters, and their 5.x-6.x codes. */
const OPS: [string, string, number][] = [
  ["REQ_OP_READ", "R", 0],
  ["REQ_OP_WRITE", "W", 1],
  ["REQ_OP_FLUSH", "F", 2],
  ["REQ_OP_DISCARD", "D", 3],
  ["REQ_OP_SECURE_ERASE", "DE", 5],
];

/** Flag letters after the operation, in blk_fill_rwbs order, with fallback bits. */
const SUFFIX_FLAGS: [string, string, number][] = [
  ["__REQ_FUA", "F", 17],
  ["__REQ_RAHEAD", "A", 19],
  ["__REQ_SYNC", "S", 11],
  ["__REQ_META", "M", 12],
];
const PREFLUSH: [string, number] = ["__REQ_PREFLUSH", 18];

/** Formats cmd_flags as rwbs, with this kernel's numbering. */
export class BlockRwbs {
  readonly #ops = new Map<number, string>();
  readonly #preflush: number;
  readonly #suffix: [number, string][];

  constructor(btf: Btf) {
    const bit = (name: string, fallback: number) => {
      try {
        return 2 ** Number(btf.enumValue("req_flag_bits", name));
      } catch {
        return 2 ** fallback;
      }
    };
    this.#preflush = bit(...PREFLUSH);
    this.#suffix = SUFFIX_FLAGS.map(([name, letter, fallback]) => [bit(name, fallback), letter]);
    for (const [name, letters, fallback] of OPS) {
      let code = fallback;
      for (const enumName of ["req_op", "req_opf"]) {
        try {
          code = Number(btf.enumValue(enumName, name));
          break;
        } catch { /* not in this enum */ }
      }
      this.#ops.set(code, letters);
    }
  }

  /** "WS", "R", "FWFS"... */
  format(cmdFlags: number): string {
    const flags = cmdFlags >>> 0;
    return ((flags & this.#preflush) !== 0 ? "F" : "") +
      (this.#ops.get(flags & OP_MASK) ?? "N") +
      this.#suffix.filter(([mask]) => (flags & mask) !== 0).map(([, l]) => l).join("");
  }
}
