/**
 * `verify`: the whole check of one program, in the kernel's order:
 * instruction encodings, then the control-flow graph, then every path.
 *
 * @module
 */

import { disassembleOne } from "../../bytecode/disasm.ts";
import { type HelperProto, HELPERS } from "../../bytecode/helpers.ts";
import type { Insn } from "../../bytecode/insn.ts";
import { BPF_LDDW, BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_VALUE } from "../../bytecode/opcodes.ts";
import { buildCfg, onCycle } from "./cfg.ts";
import { SUPPORTED_PROG_TYPES } from "./ctx_access.ts";
import { UnsupportedProgramTypeError, VerifyError } from "./errors.ts";
import { explore, type ExploreEnv } from "./explore.ts";
import { loadTimeProblem } from "./isa_check.ts";
import { liveRegisters, registerUse } from "./liveness.ts";
import { type ProgramView, programView } from "./program.ts";
import { callChainProblem, findSubprogs, isLocalCall, type Subprogs } from "./subprogs.ts";
import type {
  Diagnostic,
  DiagnosticCode,
  MapInfo,
  ProgramInput,
  VerifyOptions,
  VerifyResult,
} from "./types.ts";

/** Largest program the privileged kernel loads (BPF_COMPLEXITY_LIMIT_INSNS slots). */
export const MAX_PROGRAM_SLOTS = 1_000_000;
/** Default exploration budget, well below the kernel's 1,000,000 (see VerifyOptions). */
export const DEFAULT_COMPLEXITY_LIMIT = 250_000;

const DEFAULT_HELPERS: ReadonlyMap<number, HelperProto> = new Map(HELPERS.map((h) => [h.id, h]));

/** License strings the kernel treats as GPL-compatible (`license_is_gpl_compatible`). */
const GPL_LICENSES = new Set([
  "GPL",
  "GPL v2",
  "GPL and additional rights",
  "Dual BSD/GPL",
  "Dual MIT/GPL",
  "Dual MPL/GPL",
]);

/**
 * Checks a BPF program the way the kernel's verifier does (privileged
 * loader), and stricter where a tool would otherwise misbehave (reads of
 * never-written stack, kernel addresses written to maps). Throws
 * UnsupportedProgramTypeError for a program type it has no rules for.
 *
 * @example
 * ```ts
 * import { verify } from "./verify.ts";
 * import { exit, mov64Imm } from "../../bytecode/build.ts";
 * verify([mov64Imm(0, 0), exit()], { progType: "tracepoint" }).ok; // true
 * verify([exit()], { progType: "tracepoint" }).diagnostics[0].code; // "bad-return-value"
 * ```
 */
export function verify(program: ProgramInput, options: VerifyOptions): VerifyResult {
  if (!SUPPORTED_PROG_TYPES.includes(options.progType)) {
    throw new UnsupportedProgramTypeError(String(options.progType), SUPPORTED_PROG_TYPES);
  }
  let p: ProgramView;
  try {
    p = programView(program);
  } catch (e) {
    return result(
      [{ code: "invalid-opcode", index: 0, insn: "", message: (e as Error).message }],
      0,
    );
  }
  const diag = (code: DiagnosticCode, at: number, message: string): Diagnostic => {
    const insn = p.insns[at];
    const d: Diagnostic = {
      code,
      index: insn ? p.slotOf[at] : p.slots,
      insn: insn ? safeDisasm(insn) : "",
      message,
    };
    if (insn?.origin) d.origin = insn.origin;
    return d;
  };

  if (p.slots > MAX_PROGRAM_SLOTS) {
    return result([
      diag(
        "too-complex",
        0,
        `the program has ${p.slots} instructions; the kernel loads at most ${MAX_PROGRAM_SLOTS}`,
      ),
    ], 0);
  }
  const mapFor = mapLookup(options);
  const bad: Diagnostic[] = [];
  for (let i = 0; i < p.insns.length; i++) {
    const insn = p.insns[i];
    const why = loadTimeProblem(insn);
    if (why) bad.push(diag("invalid-opcode", i, why));
    else if (insn.code === BPF_LDDW && insn.src !== 0) {
      // Like the kernel, every map reference must resolve, reachable or not.
      const problem = mapProblem(insn, i, mapFor);
      if (problem) bad.push(diag(problem.code, i, problem.message));
    }
  }
  if (bad.length) return result(bad, 0);

  const { cfg, problems } = buildCfg(p);
  if (problems.length) return result(problems.map((x) => diag(x.code, x.at, x.message)), 0);

  let subprogs: Subprogs | undefined;
  if (p.insns.some((i) => isLocalCall(i.code, i.src))) {
    const found = findSubprogs(p);
    if ("at" in found) return result([diag(found.code, found.at, found.message)], 0);
    subprogs = found.subs;
    const why = callChainProblem(subprogs, new Int32Array(subprogs.starts.length));
    if (why) return result([diag("back-edge", firstCall(p), why)], 0);
  }

  const helpers = options.helpers
    ? new Map(options.helpers.map((h) => [h.id, h]))
    : DEFAULT_HELPERS;
  const env = exploreEnv(p, cfg, helpers, options, mapFor);
  if (subprogs) {
    env.subprogs = subprogs;
    env.stackDepths = new Int32Array(subprogs.starts.length);
  }
  try {
    const processed = explore(env);
    if (subprogs && !PRIVATE_STACKS.has(options.progType)) {
      // The combined stack of every call chain, now that each frame's depth is known.
      const why = callChainProblem(subprogs, env.stackDepths!);
      if (why) return result([diag("stack-out-of-bounds", firstCall(p), why)], processed);
    }
    return result([], processed);
  } catch (e) {
    if (e instanceof VerifyError) return result([diag(e.code, e.pc, e.message)], 0);
    throw e;
  }
}

/**
 * Program types whose deeper frames the x86-64 JIT gives private stacks
 * (Linux 6.13+), so that call chains are not limited to 512 bytes together.
 */
const PRIVATE_STACKS: ReadonlySet<string> = new Set([
  "kprobe",
  "tracepoint",
  "perf_event",
  "raw_tracepoint",
  "tp_btf",
]);

/** The first bpf-to-bpf call, where call graph problems are reported. */
function firstCall(p: ProgramView): number {
  return Math.max(0, p.insns.findIndex((i) => isLocalCall(i.code, i.src)));
}

function result(diagnostics: Diagnostic[], processed: number): VerifyResult {
  return { ok: diagnostics.length === 0, diagnostics, processed };
}

function safeDisasm(insn: Insn): string {
  try {
    return disassembleOne(insn, { opcodes: false });
  } catch {
    return `code=0x${
      insn.code.toString(16)
    } dst=${insn.dst} src=${insn.src} off=${insn.off} imm=${insn.imm}`;
  }
}

/** Resolves `lddw` map references: by instruction index (mapRefs), else by fd. */
function mapLookup(options: VerifyOptions): (index: number, fd: number) => MapInfo | undefined {
  const byFd = new Map<number, MapInfo>();
  const m = options.maps;
  if (m instanceof Map) { for (const [fd, info] of m) byFd.set(fd, info); }
  else if (m) { for (const [fd, info] of Object.entries(m)) byFd.set(Number(fd), info as MapInfo); }
  const byIndex = new Map<number, MapInfo>();
  for (const ref of options.mapRefs ?? []) byIndex.set(ref.index, ref.map);
  return (index, fd) => byIndex.get(index) ?? byFd.get(fd);
}

/** What is wrong with a pseudo `lddw`, if anything (checked for every instruction). */
function mapProblem(
  insn: Insn,
  index: number,
  mapFor: (index: number, fd: number) => MapInfo | undefined,
): { code: DiagnosticCode; message: string } | undefined {
  if (insn.src !== BPF_PSEUDO_MAP_FD && insn.src !== BPF_PSEUDO_MAP_VALUE) {
    if (insn.src === 5 || insn.src === 6) {
      return {
        code: "unknown-map",
        message: "maps by fd_array index are not supported: load maps by fd",
      };
    }
    return {
      code: "invalid-opcode",
      message: `lddw with pseudo source ${insn.src} is not supported by this verifier`,
    };
  }
  if (insn.src === BPF_PSEUDO_MAP_FD && insn.imm2) {
    return { code: "invalid-opcode", message: "lddw of a map fd must have a zero upper immediate" };
  }
  if (!mapFor(index, insn.imm)) {
    return { code: "unknown-map", message: `fd ${insn.imm} is not a map this program was given` };
  }
  return undefined;
}

function exploreEnv(
  p: ProgramView,
  cfg: ExploreEnv["cfg"],
  helpers: ReadonlyMap<number, HelperProto>,
  options: VerifyOptions,
  mapFor: (index: number, fd: number) => MapInfo | undefined,
): ExploreEnv {
  const gpl = GPL_LICENSES.has(options.license ?? "GPL");
  // Without a backward jump there is no cycle (and no need to compile the search).
  const cycles = cfg.backJump ? onCycle(cfg) : new Uint8Array(p.insns.length);
  let ids = 0;
  const { uses, defs } = registerUse(p, helpers);
  return {
    program: p,
    cfg,
    live: liveRegisters(cfg, uses, defs),
    uses,
    defs,
    imms: new Array(p.insns.length),
    forkPc: -1,
    forkSt: undefined,
    limit: options.complexityLimit ?? DEFAULT_COMPLEXITY_LIMIT,
    hasLoops: cycles.indexOf(1) >= 0,
    onCycle: cycles,
    pc: 0,
    progType: options.progType,
    helpers,
    gpl,
    allowPointerLeaks: options.allowPointerLeaks ?? false,
    possibleCpus: Math.max(1, options.possibleCpus ?? 8192),
    kernelTypes: options.kernelTypes,
    ctx: { progType: options.progType, ctxSize: options.ctxSize, ctxArgs: options.ctxArgs, gpl },
    nextId: () => ++ids,
    mapFor,
    fieldsChecked: new Uint8Array(p.insns.length),
    ptrTypes: new Uint8Array(p.insns.length),
  };
}
