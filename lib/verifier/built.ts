/**
 * Verifying programs as the DSL builds them: the verifier options (maps by
 * instruction, context size, tp_btf argument types) come from the program
 * itself. Typed structurally, so the verifier does not depend on lib/dsl.
 *
 * @module
 */

import type { Insn } from "../../bytecode/insn.ts";
import type { ProgTypeName } from "../../bytecode/prog_types.ts";
import type { Btf } from "../btf/btf.ts";
import { tpBtfTarget } from "../btf/tp_btf.ts";
import { ctxArgsFromTpBtf, kernelTypesFromBtf } from "./btf_types.ts";
import type {
  CtxArg,
  Diagnostic,
  KernelTypes,
  MapInfo,
  VerifyOptions,
  VerifyResult,
} from "./types.ts";
import { verify } from "./verify.ts";

/** What `verifyProgram` needs of a built program (lib/dsl's BuiltProgram has it). */
export interface VerifiableProgram {
  /** Program name, for diagnostics. */
  name: string;
  /** Program type: the context, helpers and return range it is checked against. */
  type: ProgTypeName;
  /** The instructions (an lddw is one). */
  insns: readonly Insn[];
  /** Map loads: logical instruction index and the map's description. */
  mapRefs: readonly { index: number; map: MapInfo }[];
  /** Bytes of context the program may read. */
  ctxSize?: number;
  /** Where it attaches; for tp_btf the event name gives the argument types. */
  attach: { kind: string; name?: string };
  /** License string (GPL-only helpers need a GPL-compatible one). */
  license?: string;
  /** The program writes kernel addresses where user space reads them, on purpose. */
  allowPointerLeaks?: boolean;
}

/** Per BTF: struct layouts, and tracepoint argument types by tracepoint. */
const btfCache = new WeakMap<Btf, { types: KernelTypes; args: Map<string, CtxArg[]> }>();

/**
 * Options for verifying `p`. tp_btf programs need vmlinux BTF (`btf`) for
 * their argument types and struct layouts; `possibleCpus` is the kernel's
 * nr_cpu_ids (lib/kernel's possibleCpus()).
 */
export function optionsForProgram(
  p: VerifiableProgram,
  btf?: Btf,
  possibleCpus?: number,
): VerifyOptions {
  const opts: VerifyOptions = {
    possibleCpus,
    progType: p.type,
    ctxSize: p.ctxSize,
    mapRefs: p.mapRefs,
    license: p.license,
  };
  if (p.allowPointerLeaks) opts.allowPointerLeaks = true;
  if (!btf) return opts;
  let cache = btfCache.get(btf);
  if (!cache) btfCache.set(btf, cache = { types: kernelTypesFromBtf(btf), args: new Map() });
  opts.kernelTypes = cache.types;
  if (p.type === "tp_btf" && p.attach.name) {
    let args = cache.args.get(p.attach.name);
    if (!args) {
      cache.args.set(
        p.attach.name,
        args = ctxArgsFromTpBtf(btf, tpBtfTarget(p.attach.name, btf), p.attach.name),
      );
    }
    opts.ctxArgs = args;
  }
  return opts;
}

/**
 * Verifies one built program.
 *
 * @example
 * ```ts
 * import { verifyProgram } from "./built.ts";
 * import { exit, mov64Imm } from "../../bytecode/build.ts";
 * const r = verifyProgram({
 *   name: "noop",
 *   type: "tracepoint",
 *   insns: [mov64Imm(0, 0), exit()],
 *   mapRefs: [],
 *   attach: { kind: "tracepoint" },
 * });
 * r.ok; // true
 * ```
 */
export function verifyProgram(
  p: VerifiableProgram,
  btf?: Btf,
  possibleCpus?: number,
): VerifyResult {
  return verify(p.insns, optionsForProgram(p, btf, possibleCpus));
}

/**
 * One diagnostic as a line for people:
 * `runqlat_switch: slot 12 (tools/runqlat.ts:97) r1 = *(u64 *)(r0 +0): null-map-value: R0 is ...`
 */
export function formatDiagnostic(program: string, d: Diagnostic): string {
  const where = d.origin ? ` (${d.origin})` : "";
  return `${program}: slot ${d.index}${where} ${d.insn}: ${d.code}: ${d.message}`;
}
