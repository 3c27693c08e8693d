/**
 * Our own BPF verifier: a pure function from a program to diagnostics with
 * stable codes, run before every load so that a mistake is reported against
 * the DSL line that made it. The kernel's verifier keeps the last word;
 * `annotateKernelLog` maps its log back to DSL lines too.
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
