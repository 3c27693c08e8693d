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
 * using session = loadAndAttach([p.build()]); // closed (detached, unloaded) at scope end
 * ```
 *
 * @module
 */

// bytecode: the instruction set
export type { Insn } from "./bytecode/insn.ts";
export { decode, encode } from "./bytecode/encode.ts";
export { type DisasmOptions, disassemble } from "./bytecode/disasm.ts";
export {
  type HelperArg,
  type HelperAvailability,
  helperById,
  helperByName,
  type HelperProto,
  type HelperRet,
} from "./bytecode/helpers.ts";
export type { AluOp, SizeName } from "./bytecode/opcodes.ts";
export type { MapTypeName, ProgTypeName } from "./bytecode/prog_types.ts";

// the DSL
export {
  type AttachTarget,
  type BuiltProgram,
  type Cond,
  Label,
  type ProgramBuilder,
} from "./lib/dsl/builder.ts";
export type { FieldInfo, Layouts, TpBtfParam } from "./lib/dsl/layouts.ts";
export type { TracepointField, TracepointFormat } from "./lib/tracefs/format.ts";
export { defineMap, type MapDef } from "./lib/dsl/maps.ts";
export { defineHistMap, type HistMapDef } from "./lib/dsl/hist.ts";
export { requestDiskDev, skipUnlessDisk } from "./lib/dsl/block_request.ts";
export {
  arg,
  retval,
  uprobe,
  type UprobeOptions,
  usdt,
  type UsdtProgram,
} from "./lib/dsl/pt_regs.ts";
export {
  BPF_F_USER_STACK,
  defineStackErrorMap,
  defineStackMap,
  stackId,
} from "./lib/dsl/stacks.ts";
export {
  type ByteArray,
  bytes,
  char,
  type CharArray,
  type Decoded,
  defineSchema,
  type FieldLayout,
  type FieldType,
  type FieldValue,
  type ScalarType,
  Schema,
} from "./lib/dsl/schema.ts";
export {
  countLost,
  defineEvents,
  discard,
  type EventBufferKind,
  type EventsDef,
  type EventsOptions,
  output,
  reserve,
  scratch,
  submit,
} from "./lib/dsl/events.ts";
export {
  type Context as ProbeContext,
  Probe,
  type ProbeOptions,
  rawTracepoint,
  tpBtf,
  tracepoint,
} from "./lib/dsl/program.ts";
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
export { BpfMap, createMap, type MapSpec, setCgroup } from "./lib/kernel/map.ts";
export { BpfProgram, loadProgram, type ProgramSpec } from "./lib/kernel/program.ts";
export type { Link } from "./lib/kernel/attach.ts";
export type { PerfEvent } from "./lib/kernel/perf_event.ts";
export type { OwnedFd } from "./lib/kernel/fd.ts";
export {
  hasKprobes,
  hasUprobes,
  hasVmlinuxBtf,
  requireKprobes,
  requireVmlinuxBtf,
  ringbufSupported,
} from "./lib/kernel/features.ts";
export { testRun } from "./lib/kernel/test_run.ts";
export {
  eventBufferKind,
  type EventReader,
  LostCounter,
  openEventReader,
  type RecordHandler,
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
export {
  ElfFile,
  type ElfSection,
  type ElfSegment,
  type ElfSymbol,
  type ElfSymbolBind,
  type ElfSymbolType,
  type ResolvedElfSymbol,
  type SYMBOL_BINDS,
  type SYMBOL_TYPES,
  type UsdtArg,
  type UsdtArgLocation,
  type UsdtProbe,
} from "./lib/symbols/elf.ts";
export {
  type FileSymbolCache,
  type FileSymbols,
  type MapEntry,
  parseProcMaps,
  PerfMap,
  type ProcessSymbols,
  type UserSymbol,
  UserSymbolizer,
} from "./lib/symbols/user.ts";
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
  type BpftraceHistEntry,
  type BpftraceHistLayout,
  formatBpftraceHist,
  formatBpftraceHistMap,
  formatBpftraceLhist,
} from "./lib/format/bpftrace_hist.ts";
export { formatTimeOfDay } from "./lib/format/time.ts";
export { decodeBytes, decodeCString, escapeText, stringifyJson } from "./lib/format/escape.ts";
export * from "./lib/verifier/mod.ts";
export type {
  Btf,
  BtfArray,
  BtfComposite,
  BtfDatasec,
  BtfDeclTag,
  BtfEnum,
  BtfEnum64,
  BtfFloat,
  BtfFunc,
  BtfFuncProto,
  BtfFwd,
  BtfInt,
  BtfKind,
  BtfKindName,
  BtfMember,
  BtfParam,
  BtfRef,
  BtfType,
  BtfTypeCommon,
  BtfVar,
  BtfVoid,
  FieldLayout as BtfFieldLayout,
  TpBtfParam as BtfTpBtfParam,
  TpBtfTarget,
} from "./lib/btf/mod.ts";
export { verifyBuilt } from "./lib/cli/session.ts";

// what tools share
export { dumpPrograms } from "./lib/cli/dump.ts";
export { streamEvents, type StreamOptions, type StreamStats } from "./lib/cli/event_loop.ts";
export {
  isStackError,
  lostStacksWarning,
  readStackErrors,
  type StackErrorCounts,
  StackTraces,
} from "./lib/cli/stack_maps.ts";
export {
  formatStackReport,
  type StackCount,
  type StackReportOptions,
  type StackSymbols,
  type SymbolizedStack,
  symbolizeStacks,
} from "./lib/cli/stack_report.ts";
export {
  foldedFrame,
  type FoldedStack,
  formatFoldedLine,
  mergeFolded,
  parseFolded,
} from "./lib/format/folded.ts";
export {
  type FlameGraphOptions,
  type Palette,
  type PALETTES,
  renderFlameGraph,
} from "./lib/format/flamegraph.ts";
export { drainHistograms, type HistogramRead } from "./lib/cli/hist_maps.ts";

// a tool is a declaration: flags, positionals, and a driver for its kind
export {
  type CommonFlags,
  defineTool,
  type Driver,
  plainTool,
  type Tool,
  type ToolInfo,
  VERSION,
} from "./lib/cli/tool.ts";
export {
  cgroupPath,
  count,
  type DefaultedFlag,
  flag,
  type FlagSpec,
  type FlagTable,
  type FlagValue,
  integer,
  nonEmpty,
  option,
  optionWithDefault,
  pidValue,
  positional,
  type PositionalSpec,
  type PositionalTable,
  readableFile,
  restPositionals,
  seconds,
  tidValue,
  type ValueFlag,
  type Values,
  wholeDisk,
} from "./lib/cli/flags.ts";
export {
  histogramJson,
  type HistogramSet,
  histogramText,
  histogramTool,
  type IntervalOptions,
  type IntervalSpec,
  intervalTool,
  type JsonBucket,
  jsonBuckets,
  type LabeledHistogram,
  log2Bounds,
  log2Buckets,
  timeLine,
} from "./lib/cli/drivers/interval.ts";
export { type EventSpec, eventTool } from "./lib/cli/drivers/events.ts";
export {
  type StackMaps,
  type StackOptions,
  type StackSpec,
  stackTool,
} from "./lib/cli/drivers/stacks.ts";
export { writeOut } from "./lib/cli/output.ts";
export { runTool } from "./lib/cli/run.ts";
export { loadAndAttach, type LoadOptions, type Session } from "./lib/cli/session.ts";
export { intervals, StopSignal } from "./lib/cli/stop.ts";
export { type FlagHelp, formatHelp, type ToolHelp, UsageError } from "./lib/cli/usage.ts";

// fleet formats: Prometheus exposition (--prometheus) and pprof (--pprof)
export { type ListenAddress, metricsUrl, parseListen } from "./lib/export/prometheus_server.ts";
export type { ExportedReport } from "./lib/export/tool_collector.ts";
export type { DrainedHistogram } from "./lib/export/log2_totals.ts";
