#!/usr/bin/env -S deno run -A
/**
 * wakeuptime: summarize the time threads spent blocked, by the kernel stack
 * of the thread that woke them (the waker) and the two names, in
 * microseconds. Where offcputime shows where a thread blocks, this shows who
 * ends the blocking, and through which path.
 *
 * Events: sched_switch and sched_wakeup as BTF-typed tracepoints. When a
 * thread switches out, the time is saved by TID; when it is woken, the time
 * since is added to the key {waker comm, target comm, waker kernel stack}
 * (bpf_get_stackid in the waker's context), in the kernel. Flags follow
 * libbpf-tools wakeuptime (-f from bcc); the report is bcc's layout, frame
 * names without addresses.
 *
 *     # deno run -A tools/wakeuptime.ts -p 4120 5
 *     Tracing blocked time (us) by kernel stack for 5 secs.
 *
 *         target:          consumer
 *         try_to_wake_up
 *         autoremove_wake_function
 *         __wake_up_common
 *         __wake_up_sync_key
 *         pipe_write
 *         vfs_write
 *         ksys_write
 *         do_syscall_64
 *         entry_SYSCALL_64_after_hwframe
 *         waker:           producer
 *             200718
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import {
  MAX_STACK_STORAGE,
  type StackOptions,
  stackTool,
  untilWhen,
} from "../lib/cli/drivers/stacks.ts";
import {
  flag,
  integer,
  option,
  optionWithDefault,
  pidValue,
  positional,
  seconds,
} from "../lib/cli/flags.ts";
import type { Session } from "../lib/cli/session.ts";
import type { SymbolizedStack } from "../lib/cli/stack_report.ts";
import { UsageError } from "../lib/cli/usage.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import { type Probe, tpBtf } from "../lib/dsl/program.ts";
import { r0, r1, r10, r2, r7, r8, r9 } from "../lib/dsl/registers.ts";
import {
  defineStackErrorMap,
  defineStackMap,
  PERF_MAX_STACK_DEPTH,
  stackId,
} from "../lib/dsl/stacks.ts";
import { decodeCString, escapeText } from "../lib/format/escape.ts";
import { foldedFrame, formatFoldedLine } from "../lib/format/folded.ts";

/** What the operator asked for. */
interface Options extends StackOptions {
  pid?: number;
  userThreadsOnly: boolean;
  minUs: number;
  maxUs?: number;
  stackSize: number;
  maxDepth: number;
}

// --- BPF side ---------------------------------------------------------------

const PF_KTHREAD = 0x00200000;
const COMM_LEN = 16;
/** The counts key: waker comm, target comm, the waker's kernel stack id. */
const KEY = { waker: 0, target: 16, stackId: 32, size: 40 } as const;

function buildMaps(o: Options) {
  return {
    start: defineMap({ name: "start", type: "hash", keySize: 4, valueSize: 8, maxEntries: 10240 }),
    counts: defineMap({
      name: "counts",
      type: "hash",
      keySize: KEY.size,
      valueSize: 8,
      maxEntries: 10240,
    }),
    stacks: defineStackMap({ name: "stackmap", storageSize: o.stackSize, maxDepth: o.maxDepth }),
    errors: defineStackErrorMap(),
  };
}

type Maps = ReturnType<typeof buildMaps>;

/** sched_switch: the thread leaving the CPU starts blocking now (unless filtered out). */
function switchProgram(o: Options, maps: Maps): Probe {
  const p = tpBtf("sched_switch", { name: "wakeup_switch" });
  const done = p.label(), tid = p.stack(4);
  p.ctx(r7, "prev").field(r8, r7, "task_struct", "pid").jumpIf(r8, "==", 0, done);
  if (o.pid !== undefined) p.field(r1, r7, "task_struct", "tgid").jumpIf(r1, "!=", o.pid, done);
  if (o.userThreadsOnly) {
    p.field(r1, r7, "task_struct", "flags").jumpIf(r1, "&", PF_KTHREAD, done);
  }
  p.store("u32", r10, tid, r8).startTimer(maps.start, tid);
  p.bind(done);
  return p.ret(0);
}

/** sched_wakeup: the woken thread's time blocked, under the waker's stack. */
function wakeupProgram(o: Options, maps: Maps): Probe {
  const p = tpBtf("sched_wakeup", { name: "wakeup_wakeup" });
  const done = p.label(), cleanup = p.label(), tid = p.stack(4), key = p.stack(KEY.size);
  p.ctx(r7, "p").field(r1, r7, "task_struct", "pid").store("u32", r10, tid, r1);
  p.elapsed(r8, maps.start, tid, done, cleanup);
  p.div(r8, 1000).jumpIf(r8, "<", o.minUs, cleanup);
  if (o.maxUs !== undefined) {
    if (o.maxUs <= 0x7fffffff) p.jumpIf(r8, ">", o.maxUs, cleanup);
    else p.mov64(r1, BigInt(o.maxUs)).jumpIf(r8, ">", r1, cleanup);
  }
  p.zeroStack(key, KEY.size);
  stackId(p, r9, maps.stacks, { user: false, errors: maps.errors });
  p.store("u32", r10, key + KEY.stackId, r9);
  p.stackPtr(r1, key + KEY.waker).mov(r2, COMM_LEN).call("get_current_comm");
  const comm = p.layouts.structField("task_struct", "comm").offset;
  for (let i = 0; i < COMM_LEN; i += 8) {
    p.load(r1, "u64", r7, comm + i).store("u64", r10, key + KEY.target + i, r1);
  }
  const zero = p.stack(8);
  p.lookupOrInit(maps.counts, key, zero).jumpIf(r0, "==", 0, cleanup);
  p.atomicAdd("u64", r0, 0, r8);
  p.bind(cleanup).delete(maps.start, tid);
  p.bind(done);
  return p.ret(0);
}

// --- user side --------------------------------------------------------------

function readCounts(session: Session, maps: Maps) {
  return session.maps.get(maps.counts)!.entries().map(([k, v]) => {
    const key = new DataView(k.buffer);
    return {
      pid: 0,
      shownId: 0,
      comm: decodeCString(k.subarray(KEY.target, KEY.target + COMM_LEN)),
      label: decodeCString(k.subarray(KEY.waker, KEY.waker + COMM_LEN)),
      userStackId: -1,
      kernelStackId: key.getInt32(KEY.stackId, true),
      value: Number(new DataView(v.buffer).getBigUint64(0, true)),
    };
  });
}

/** The frames of the waker's stack, innermost first, or the missed marker. */
function frames(s: SymbolizedStack): string[] {
  if (s.kernel === "missed") return ["[Missed Kernel Stack]"];
  return s.kernel ?? [];
}

/** bcc's wakeuptime report: target, the waker's stack, waker, microseconds. */
function text(stacks: SymbolizedStack[], o: Options): string {
  if (o.report.folded) {
    // waker;outermost..innermost;target value
    const lines = new Map<string, number>();
    for (const s of stacks) {
      const line = [s.label ?? "", ...frames(s).toReversed(), s.comm].map(foldedFrame).join(";");
      lines.set(line, (lines.get(line) ?? 0) + s.value);
    }
    return [...lines].sort((a, b) => a[1] - b[1])
      .map(([line, n]) => formatFoldedLine([line], n) + "\n").join("");
  }
  return "\n" + stacks.map((s) =>
    [
      `    ${"target:".padEnd(16)} ${escapeText(s.comm)}`,
      ...frames(s).map((f) => `    ${escapeText(f)}`),
      `    ${"waker:".padEnd(16)} ${escapeText(s.label ?? "")}`,
      `        ${s.value}`,
      "",
    ].join("\n") + "\n"
  ).join("");
}

export const tool = stackTool({
  name: "wakeuptime",
  summary: "Summarize sleep to wakeup time by waker kernel stack.",
  examples: [
    ["wakeuptime", "trace blocked time with waker stacks"],
    ["wakeuptime 5", "trace for 5 seconds only"],
    ["wakeuptime -f 5", "5 seconds, and output in folded format"],
    ["wakeuptime -u", "don't include kernel threads (user only)"],
    ["wakeuptime -p 185", "trace for PID 185 only"],
  ],
  flags: {
    pid: option("PID", "trace this PID only", pidValue, { short: "p" }),
    userThreadsOnly: flag("user threads only (no kernel threads)", "u", "user-threads-only"),
    folded: flag("output folded format", "f"),
    minBlockTime: optionWithDefault(
      "US",
      "only blocks of at least US microseconds (1)",
      integer(1, 2 ** 53, "min block time"),
      1,
      { short: "m", long: "min-block-time" },
    ),
    maxBlockTime: option(
      "US",
      "only blocks of at most US microseconds",
      integer(1, 2 ** 53, "max block time"),
      { short: "M", long: "max-block-time" },
    ),
    perfMaxStackDepth: optionWithDefault(
      "N",
      `the limit for kernel stack traces (${PERF_MAX_STACK_DEPTH})`,
      integer(1, PERF_MAX_STACK_DEPTH, "stack depth"),
      PERF_MAX_STACK_DEPTH,
      { long: "perf-max-stack-depth" },
    ),
    stackStorageSize: optionWithDefault(
      "N",
      "unique stack traces that can be stored (1024)",
      integer(1, MAX_STACK_STORAGE, "stack storage size"),
      1024,
      { long: "stack-storage-size" },
    ),
  },
  positionals: { duration: positional("duration", "duration of trace, in seconds", seconds) },
  variants: [["-p", "1"], ["-u", "-f"], ["-m", "1000", "-M", "5000000000"]],
  options: (v): Options => {
    if (v.pid !== undefined && v.userThreadsOnly) {
      throw new UsageError("-p and -u cannot be used together");
    }
    if (v.maxBlockTime !== undefined && v.maxBlockTime < v.minBlockTime) {
      throw new UsageError("the max block time is below the min block time");
    }
    return {
      pid: v.pid,
      userThreadsOnly: v.userThreadsOnly,
      minUs: v.minBlockTime,
      maxUs: v.maxBlockTime,
      stackSize: v.stackStorageSize,
      maxDepth: v.perfMaxStackDepth,
      duration: v.duration,
      report: {
        user: false,
        kernel: true,
        delimiter: false,
        annotate: false,
        folded: v.folded,
        // The BPF program and the tracepoint machinery that called it.
        dropKernelFrame: (name) =>
          /^(bpf_prog_|bpf_trace_run\d|__traceiter_|__bpf_trace_)/.test(name),
      },
    };
  },
}, {
  unit: "us",
  maps: buildMaps,
  build: (o, maps) => [switchProgram(o, maps), wakeupProgram(o, maps)].map((p) => p.build()),
  banner: (o) => `Tracing blocked time (us) by kernel stack${untilWhen(o.duration)}\n`,
  read: readCounts,
  text,
});

if (import.meta.main) await tool.main();
