/**
 * Reading stack traces back from a stack trace map (lib/dsl/stacks.ts): a
 * stack id becomes its array of addresses, innermost frame first, and the
 * per-CPU error counter becomes the end-of-run warning bcc prints.
 *
 * @module
 */
import { EFAULT, STACK_ERROR_SLOTS } from "../dsl/stacks.ts";
import type { BpfMap } from "../kernel/map.ts";

/**
 * Whether a stack id stored by a program means a lost stack (bcc's
 * stack_id_err): negative, but not -EFAULT, which only says there was no
 * such stack (the user stack of a kernel thread, the kernel stack of a
 * sample taken in user mode).
 */
export function isStackError(id: number): boolean {
  return id < 0 && id !== -EFAULT;
}

/** The stacks of one map, each read from the kernel at most once. */
export class StackTraces {
  readonly #cache = new Map<number, bigint[]>();
  /** Wraps a stack trace map; nothing is read until a stack is asked for. */
  constructor(readonly map: BpfMap) {}

  /**
   * The addresses of stack `id`, innermost first (the map's value is a
   * zero-terminated u64 array). Empty for a negative id or one the map no
   * longer holds.
   */
  get(id: number): bigint[] {
    if (id < 0) return [];
    const cached = this.#cache.get(id);
    if (cached) return cached;
    const key = new Uint8Array(4);
    new DataView(key.buffer).setUint32(0, id, true);
    const value = this.map.lookup(key);
    const addrs: bigint[] = [];
    if (value) {
      const v = new DataView(value.buffer);
      for (let off = 0; off + 8 <= value.length; off += 8) {
        const addr = v.getBigUint64(off, true);
        if (addr === 0n) break;
        addrs.push(addr);
      }
    }
    this.#cache.set(id, addrs);
    return addrs;
  }
}

/** Stacks lost in the kernel, by cause, summed over CPUs. */
export interface StackErrorCounts {
  /** -EEXIST: another stack held the hash bucket. */
  collisions: number;
  /** -ENOMEM: the map had no free entry. */
  full: number;
}

/** Reads the per-CPU error counter (lib/dsl/stacks.ts defineStackErrorMap). */
export function readStackErrors(map: BpfMap): StackErrorCounts {
  const value = map.lookup(new Uint8Array(4));
  const counts = { collisions: 0, full: 0 };
  if (!value) return counts;
  const v = new DataView(value.buffer);
  const stride = Math.ceil(map.spec.valueSize / 8) * 8;
  for (let cpu = 0; cpu + stride <= value.length; cpu += stride) {
    counts.collisions += Number(v.getBigUint64(cpu + 8 * STACK_ERROR_SLOTS.collision, true));
    counts.full += Number(v.getBigUint64(cpu + 8 * STACK_ERROR_SLOTS.full, true));
  }
  return counts;
}

/**
 * The warning for lost stacks, as bcc words it, or undefined when none was
 * lost: "WARNING: 3 stack traces could not be displayed. Consider increasing
 * --stack-storage-size."
 */
export function lostStacksWarning(lost: StackErrorCounts): string | undefined {
  const n = lost.collisions + lost.full;
  if (n === 0) return undefined;
  return `WARNING: ${n} stack traces could not be displayed. ` +
    "Consider increasing --stack-storage-size.";
}

/** The distinct u32 PIDs at byte `offset` of the keys of a counts map. */
export function pidsIn(map: BpfMap, offset: number): Set<number> {
  const pids = new Set<number>();
  for (const [key] of map.entries()) {
    pids.add(new DataView(key.buffer, key.byteOffset).getUint32(offset, true));
  }
  return pids;
}
