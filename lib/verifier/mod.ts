/**
 * Our own BPF verifier: a pure function from a program to diagnostics with
 * stable codes, run before every load so that a mistake is reported against
 * the DSL line that made it. The kernel's verifier keeps the last word.
 *
 * What it checks, in the kernel's order: instruction encodings; the
 * control-flow graph (jumps inside the program and not into an `lddw`, no
 * unreachable instruction, every path ends in `exit`); then every path, with
 * register types and number ranges (tnum + unsigned/signed bounds, refined
 * by branches): registers read after being written, R1-R5 dead after calls,
 * R10 read-only, the 512-byte stack, the context per program type, map
 * values only after their NULL check and within the value (and as the
 * map's BPF_F_RDONLY_PROG / BPF_F_WRONLY_PROG flags allow), typed kernel
 * structs (tp_btf) within their BTF layout, one kind of pointer per context
 * access instruction, helpers allowed for the program type with arguments of
 * the right types, ring buffer records released, bounded loops simulated
 * until they exit (or until may_goto leaves them), bpf-to-bpf calls each in
 * a frame of their own.
 *
 * Program types: socket_filter, kprobe, tracepoint, perf_event,
 * raw_tracepoint and tp_btf (SUPPORTED_PROG_TYPES); any other type throws
 * UnsupportedProgramTypeError. Not supported: kfunc calls, pointers to a
 * caller's stack dereferenced in a subprogram, lddw of BTF ids and functions.
 *
 * Where it is stricter than the privileged kernel, on purpose:
 * - `uninit-stack`: reading stack bytes nothing wrote (garbage, or hash keys
 *   with random padding);
 * - `pointer-leak`: kernel addresses written to maps, ring buffers, perf
 *   output or returned (a typed kernel object's address may still be a map
 *   key: it identifies, it is not shown); `allowPointerLeaks` turns it off;
 * - `bad-return-value`: R0 must be a number at exit.
 * The kernel's strict mode (CAP_BPF without CAP_PERFMON) agrees with all three;
 * tests count false rejects without these policy codes.
 *
 * @example
 * ```ts
 * import { verify } from "./mod.ts";
 * import { exit, mov64Imm } from "../../bytecode/build.ts";
 * const { ok, diagnostics } = verify([mov64Imm(0, 0), exit()], { progType: "tracepoint" });
 * ```
 *
 * @module
 */

export { DEFAULT_COMPLEXITY_LIMIT, MAX_PROGRAM_SLOTS, verify } from "./verify.ts";
export { DIAGNOSTIC_CODES } from "./types.ts";
export { SUPPORTED_PROG_TYPES } from "./ctx_access.ts";
export { UnsupportedProgramTypeError } from "./errors.ts";
export {
  formatDiagnostic,
  optionsForProgram,
  type VerifiableProgram,
  verifyProgram,
} from "./built.ts";
export { ctxArgsFromTpBtf, kernelTypesFromBtf } from "./btf_types.ts";
export type {
  BtfMemberAccess,
  CtxArg,
  Diagnostic,
  DiagnosticCode,
  KernelTypes,
  MapInfo,
  ProgramInput,
  VerifyOptions,
  VerifyResult,
} from "./types.ts";
