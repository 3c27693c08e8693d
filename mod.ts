/**
 * BPF performance tools for Linux, in TypeScript: a DSL that builds BPF
 * programs, a loader that talks to the kernel through libbpf, and the
 * formatters the bcc tools print with. No clang, LLVM or kernel headers.
 *
 * @example Count context switches per CPU-second, in a few lines
 * ```ts
 * import { defineMap, loadAndAttach, r0, r10, tpBtf } from "./mod.ts";
 *
 * const switches = defineMap({
 *   name: "switches", type: "percpu_array", keySize: 4, valueSize: 8, maxEntries: 1,
 * });
 * const p = tpBtf("sched_switch");
 * const key = p.stack(4);
 * p.store("u32", r10, key, 0).counterAdd(switches, key, 1).ret(0);
 * const session = loadAndAttach([p.build()]);
 * ```
 *
 * @module
 */

// bytecode: the instruction set
export type { Insn } from "./bytecode/insn.ts";
export { decode, encode } from "./bytecode/encode.ts";
export { disassemble } from "./bytecode/disasm.ts";
export { helperById, helperByName } from "./bytecode/helpers.ts";

// the DSL
export { type AttachTarget, type BuiltProgram, type Cond, Label } from "./lib/dsl/builder.ts";
export { defineMap, type MapDef } from "./lib/dsl/maps.ts";
export { defineHistMap, type HistMapDef } from "./lib/dsl/hist.ts";
export { requestDiskDev, skipUnlessDisk } from "./lib/dsl/block_request.ts";
export { arg, retval, uprobe, usdt } from "./lib/dsl/pt_regs.ts";
export {
  BPF_F_USER_STACK,
  defineStackErrorMap,
  defineStackMap,
  stackId,
} from "./lib/dsl/stacks.ts";
export { bytes, char, type Decoded, defineSchema, Schema } from "./lib/dsl/schema.ts";
export {
  countLost,
  defineEvents,
  discard,
  type EventsDef,
  output,
  reserve,
  scratch,
  submit,
} from "./lib/dsl/events.ts";
export { Probe, rawTracepoint, tpBtf, tracepoint } from "./lib/dsl/program.ts";
export {
  type Operand,
  r0,
  r1,
  r10,
  r2,
  r3,
  r4,
  r5,
  r6,
  r7,
  r8,
  r9,
  Reg,
} from "./lib/dsl/registers.ts";

// the kernel
export { BpfMap, createMap, setCgroup } from "./lib/kernel/map.ts";
export { BpfProgram, loadProgram } from "./lib/kernel/program.ts";
export { closeAll } from "./lib/kernel/fd.ts";
export {
  hasKprobes,
  hasUprobes,
  hasVmlinuxBtf,
  requireKprobes,
  requireVmlinuxBtf,
} from "./lib/kernel/features.ts";
export { testRun } from "./lib/kernel/test_run.ts";
export {
  eventBufferKind,
  type EventReader,
  LostCounter,
  openEventReader,
  ringbufSupported,
} from "./lib/kernel/ringbuf.ts";
export {
  BpfError,
  BpfLoadError,
  FeatureMissingError,
  PermissionError,
} from "./lib/kernel/errors.ts";

// symbols
export {
  Kallsyms,
  KallsymsHiddenError,
  type KernelSymbol,
  kernelSymbols,
  loadKallsyms,
  type ResolvedSymbol,
} from "./lib/symbols/kallsyms.ts";
export { ElfFile } from "./lib/symbols/elf.ts";
export { parseProcMaps, PerfMap, UserSymbolizer } from "./lib/symbols/user.ts";
export { demangle } from "./lib/symbols/demangle.ts";
export {
  type BlockDevice,
  devString,
  diskByName,
  DiskNames,
  kernelDev,
  listBlockDevices,
} from "./lib/symbols/disks.ts";

// formatting
export { formatLinearHist, formatLog2Hist } from "./lib/format/log2_hist.ts";
export {
  formatBpftraceHist,
  formatBpftraceHistMap,
  formatBpftraceLhist,
} from "./lib/format/bpftrace_hist.ts";
export { formatTimeOfDay } from "./lib/format/time.ts";
export { decodeBytes, decodeCString, escapeText, stringifyJson } from "./lib/format/escape.ts";
export * from "./lib/verifier/mod.ts";
export { verifyBuilt } from "./lib/cli/session.ts";

// what tools share
export { intervalCount, parseToolArgs, pidArg, positiveInt } from "./lib/cli/args.ts";
export { dumpPrograms } from "./lib/cli/dump.ts";
export { streamEvents } from "./lib/cli/event_loop.ts";
export {
  isStackError,
  lostStacksWarning,
  readStackErrors,
  StackTraces,
} from "./lib/cli/stack_maps.ts";
export { formatStackReport, symbolizeStacks } from "./lib/cli/stack_report.ts";
export { foldedFrame, formatFoldedLine, mergeFolded, parseFolded } from "./lib/format/folded.ts";
export { renderFlameGraph } from "./lib/format/flamegraph.ts";
export { drainHistograms, type HistogramRead, log2Buckets } from "./lib/cli/hist_maps.ts";
export { writeOut } from "./lib/cli/output.ts";
export { runTool } from "./lib/cli/run.ts";
export { loadAndAttach, type Session } from "./lib/cli/session.ts";
export { intervals, StopSignal } from "./lib/cli/stop.ts";
export { formatHelp, type ToolHelp, UsageError } from "./lib/cli/usage.ts";
