#!/usr/bin/env -S deno run -A
/**
 * offwaketime: summarize blocked time by the blocked thread's stack and the
 * stack of the thread that woke it, in microseconds: offcputime and
 * wakeuptime joined, for off-wake flame graphs (-f).
 *
 * Events: sched_switch and sched_wakeup as BTF-typed tracepoints. When a
 * thread switches out, its stacks (current is still that thread) and the
 * time are saved by TID; when it is woken, the waker's name and stacks are
 * saved for it; when it switches back in, the time away is added to the key
 * {target, its stacks, waker, its stacks}, in the kernel. The idle threads
 * are not counted. Output and flags follow bcc's offwaketime (libbpf-tools
 * has none).
 *
 *     # deno run -A tools/offwaketime.ts -p 4121 5
 *     Tracing blocked time (us) by user + kernel off-CPU and waker stack for 5 secs.
 *
 *         waker:           producer 4121
 *         main
 *         write
 *         entry_SYSCALL_64_after_hwframe
 *         ...
 *         anon_pipe_write
 *         __wake_up_sync_key
 *         --               --
 *         schedule
 *         anon_pipe_read
 *         ...
 *         read
 *         main
 *         target:          consumer 4121
 *             200718
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import {
  stackFlags,
  type StackOptions,
  stackReportOptions,
  stacksShown,
  stackTool,
  untilWhen,
} from "../lib/cli/drivers/stacks.ts";
import {
  flag,
  integer,
  option,
  pidValue,
  positional,
  seconds,
  tidValue,
} from "../lib/cli/flags.ts";
import type { Session } from "../lib/cli/session.ts";
import type { StackCount, SymbolizedStack } from "../lib/cli/stack_report.ts";
import { UsageError } from "../lib/cli/usage.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import { type Probe, tpBtf } from "../lib/dsl/program.ts";
import { r0, r1, r10, r2, r3, r7, r8, r9 } from "../lib/dsl/registers.ts";
import { defineStackErrorMap, defineStackMap, EFAULT, stackId } from "../lib/dsl/stacks.ts";
import { decodeCString, escapeText } from "../lib/format/escape.ts";
import { foldedFrame, formatFoldedLine } from "../lib/format/folded.ts";

/** What the operator asked for. */
interface Options extends StackOptions {
  threads:
    | { kind: "all" }
    | { kind: "pid"; pid: number }
    | { kind: "tid"; tid: number }
    | { kind: "user" }
    | { kind: "kernel" };
  minUs: number;
  maxUs?: number;
  stackSize: number;
}

// --- BPF side ---------------------------------------------------------------

const PF_KTHREAD = 0x00200000;
const COMM_LEN = 16;
/** Stack ids and the process of one side (the blocked thread, or its waker). */
const SIDE = { kernelStack: 0, userStack: 4, tgid: 8, size: 12 } as const;
/** counts key: target comm, waker comm, target TID, then the target's and the waker's sides. */
const KEY = { target: 0, waker: 16, tid: 32, t: 36, w: 48, size: 64 } as const;
/** start value: when the thread left, then its side. */
const START = { ts: 0, side: 8, size: 24 } as const;
/** wokeby value: the waker's comm, then its side. */
const WOKE = { comm: 0, side: 16, size: 32 } as const;

function buildMaps(o: Options) {
  return {
    start: defineMap({
      name: "start",
      type: "hash",
      keySize: 4,
      valueSize: START.size,
      maxEntries: 10240,
    }),
    wokeby: defineMap({
      name: "wokeby",
      type: "hash",
      keySize: 4,
      valueSize: WOKE.size,
      maxEntries: 10240,
    }),
    counts: defineMap({
      name: "counts",
      type: "hash",
      keySize: KEY.size,
      valueSize: 8,
      maxEntries: 10240,
    }),
    stacks: defineStackMap({ name: "stack_traces", storageSize: o.stackSize }),
    errors: defineStackErrorMap(),
  };
}

type Maps = ReturnType<typeof buildMaps>;

/** Jumps to `skip` unless the task in r7 is one we trace. */
function threadFilter(p: Probe, o: Options, skip: ReturnType<Probe["label"]>): void {
  const t = o.threads;
  if (t.kind === "pid") p.field(r1, r7, "task_struct", "tgid").jumpIf(r1, "!=", t.pid, skip);
  if (t.kind === "tid") p.field(r1, r7, "task_struct", "pid").jumpIf(r1, "!=", t.tid, skip);
  if (t.kind === "user") p.field(r1, r7, "task_struct", "flags").jumpIf(r1, "&", PF_KTHREAD, skip);
  if (t.kind === "kernel") {
    p.field(r1, r7, "task_struct", "flags").and(r1, PF_KTHREAD).jumpIf(r1, "==", 0, skip);
  }
}

/** Stores the current thread's side (stack ids, tgid) at r10+at. Clobbers r0-r5, r9. */
function currentSide(p: Probe, o: Options, maps: Maps, at: number): void {
  p.mov(r9, -EFAULT); // no such stack (not asked for, or a kernel thread's user stack)
  if (o.report.user) {
    // A kernel thread has no user stack: skip the walk. (The current task is
    // a plain pointer here, read with a probe read.)
    const flags = p.stack(8);
    const at = p.layouts.structField("task_struct", "flags").offset;
    p.store("u64", r10, flags, 0).call("get_current_task").mov(r3, r0).add(r3, at);
    p.stackPtr(r1, flags).mov(r2, 4).call("probe_read_kernel");
    p.load(r1, "u32", r10, flags).and(r1, PF_KTHREAD);
    p.if(r1, "==", 0, () => stackId(p, r9, maps.stacks, { user: true, errors: maps.errors }));
  }
  p.store("u32", r10, at + SIDE.userStack, r9);
  if (o.report.kernel) stackId(p, r9, maps.stacks, { user: false, errors: maps.errors });
  else p.mov(r9, -EFAULT);
  p.store("u32", r10, at + SIDE.kernelStack, r9);
  p.call("get_current_pid_tgid").rsh(r0, 32).store("u32", r10, at + SIDE.tgid, r0);
}

function switchProgram(o: Options, maps: Maps): Probe {
  const p = tpBtf("sched_switch", { name: "offwake_switch" });
  // The thread leaving: its stacks now, while it is current.
  const skip = p.label(), tid = p.stack(4), start = p.stack(START.size);
  p.ctx(r7, "prev").field(r8, r7, "task_struct", "pid").jumpIf(r8, "==", 0, skip);
  threadFilter(p, o, skip);
  p.zeroStack(start, START.size);
  currentSide(p, o, maps, start + START.side);
  p.ktime(r0).store("u64", r10, start + START.ts, r0);
  p.store("u32", r10, tid, r8).update(maps.start, tid, start);
  p.bind(skip);

  // The thread arriving: its time away, under its stacks and its waker's.
  const done = p.label(), cleanup = p.label(), key = p.stack(KEY.size);
  p.ctx(r7, "next").field(r1, r7, "task_struct", "pid").store("u32", r10, tid, r1);
  p.lookup(maps.start, tid).jumpIf(r0, "==", 0, done).mov(r8, r0);
  p.ktime(r9).load(r1, "u64", r8, START.ts).sub(r9, r1);
  p.jumpIf(r9, "s<", 0, cleanup).div(r9, 1000).jumpIf(r9, "<", o.minUs, cleanup);
  if (o.maxUs !== undefined) {
    if (o.maxUs <= 0x7fffffff) p.jumpIf(r9, ">", o.maxUs, cleanup);
    else p.mov64(r1, BigInt(o.maxUs)).jumpIf(r9, ">", r1, cleanup);
  }
  p.zeroStack(key, KEY.size);
  p.load(r1, "u32", r10, tid).store("u32", r10, key + KEY.tid, r1);
  for (let i = 0; i < SIDE.size; i += 4) {
    p.load(r1, "u32", r8, START.side + i).store("u32", r10, key + KEY.t + i, r1);
  }
  const comm = p.layouts.structField("task_struct", "comm").offset;
  for (let i = 0; i < COMM_LEN; i += 8) {
    p.load(r1, "u64", r7, comm + i).store("u64", r10, key + KEY.target + i, r1);
  }
  // No waker seen (woken before tracing, or not woken: preempted): its side stays empty.
  p.store("u32", r10, key + KEY.w + SIDE.kernelStack, -EFAULT);
  p.store("u32", r10, key + KEY.w + SIDE.userStack, -EFAULT);
  p.lookup(maps.wokeby, tid);
  p.if(r0, "!=", 0, () => {
    for (let i = 0; i < COMM_LEN; i += 8) {
      p.load(r1, "u64", r0, WOKE.comm + i).store("u64", r10, key + KEY.waker + i, r1);
    }
    for (let i = 0; i < SIDE.size; i += 4) {
      p.load(r1, "u32", r0, WOKE.side + i).store("u32", r10, key + KEY.w + i, r1);
    }
  });
  const zero = p.stack(8);
  p.lookupOrInit(maps.counts, key, zero).jumpIf(r0, "==", 0, cleanup);
  p.atomicAdd("u64", r0, 0, r9);
  p.bind(cleanup).delete(maps.start, tid).delete(maps.wokeby, tid);
  p.bind(done);
  return p.ret(0);
}

function wakeupProgram(o: Options, maps: Maps): Probe {
  const p = tpBtf("sched_wakeup", { name: "offwake_wakeup" });
  const skip = p.label(), tid = p.stack(4), woke = p.stack(WOKE.size);
  p.ctx(r7, "p");
  threadFilter(p, o, skip);
  p.field(r8, r7, "task_struct", "pid").store("u32", r10, tid, r8).zeroStack(woke, WOKE.size);
  p.stackPtr(r1, woke + WOKE.comm).mov(r2, COMM_LEN).call("get_current_comm");
  currentSide(p, o, maps, woke + WOKE.side);
  p.update(maps.wokeby, tid, woke);
  p.bind(skip);
  return p.ret(0);
}

// --- user side --------------------------------------------------------------

/** Each count as two stacks to symbolize, the target's ("t<i>") and its waker's ("w<i>"). */
function readCounts(session: Session, maps: Maps): StackCount[] {
  return session.maps.get(maps.counts)!.entries().flatMap(([k, v], i) => {
    const key = new DataView(k.buffer);
    const value = Number(new DataView(v.buffer).getBigUint64(0, true));
    const side = (at: number) => ({
      kernelStackId: key.getInt32(at + SIDE.kernelStack, true),
      userStackId: key.getInt32(at + SIDE.userStack, true),
      pid: key.getUint32(at + SIDE.tgid, true),
    });
    return [
      {
        ...side(KEY.t),
        shownId: key.getUint32(KEY.tid, true),
        comm: decodeCString(k.subarray(KEY.target, KEY.target + COMM_LEN)),
        label: `t${i}`,
        value,
      },
      {
        ...side(KEY.w),
        shownId: 0,
        comm: decodeCString(k.subarray(KEY.waker, KEY.waker + COMM_LEN)),
        label: `w${i}`,
        value,
      },
    ];
  });
}

/** A blocked time with both stacks. */
interface Pair {
  target: SymbolizedStack;
  waker: SymbolizedStack;
  value: number;
}

/** Pairs the stacks back up, merging pairs that print the same, least first (bcc's order). */
function pairs(stacks: SymbolizedStack[]): Pair[] {
  const byIndex = new Map<string, { t?: SymbolizedStack; w?: SymbolizedStack }>();
  for (const s of stacks) {
    const id = s.label!.slice(1);
    const entry = byIndex.get(id) ?? {};
    if (s.label!.startsWith("t")) entry.t = s;
    else entry.w = s;
    byIndex.set(id, entry);
  }
  const merged = new Map<string, Pair>();
  for (const { t, w } of byIndex.values()) {
    if (!t || !w) continue;
    const strip = (s: SymbolizedStack) => [s.pid, s.shownId, s.comm, s.kernel, s.user];
    const key = JSON.stringify([strip(t), strip(w)]);
    const seen = merged.get(key);
    if (seen) seen.value += t.value;
    else merged.set(key, { target: t, waker: w, value: t.value });
  }
  return [...merged.values()].sort((a, b) => a.value - b.value);
}

const missed = (side: "Kernel" | "User") => `[Missed ${side} Stack]`;

/** One side's frames, innermost first (kernel, then user), with -d's delimiter between. */
function frames(s: SymbolizedStack, o: Options): string[] {
  const k = s.kernel === "missed" ? [missed("Kernel")] : s.kernel ?? [];
  const u = s.user === "missed" ? [missed("User")] : s.user ?? [];
  const both = k.length > 0 && u.length > 0 && o.report.delimiter;
  return [...k, ...(both ? ["-"] : []), ...u];
}

function text(stacks: SymbolizedStack[], o: Options): string {
  const all = pairs(stacks);
  if (o.report.folded) {
    // target;target outermost..innermost;--;waker innermost..outermost;waker
    const lines = new Map<string, number>();
    for (const { target, waker, value } of all) {
      const line = [
        target.comm,
        ...frames(target, o).toReversed(),
        "--",
        ...frames(waker, o),
        waker.comm,
      ].map(foldedFrame).join(";");
      lines.set(line, (lines.get(line) ?? 0) + value);
    }
    return [...lines].sort((a, b) => a[1] - b[1])
      .map(([line, n]) => formatFoldedLine([line], n) + "\n").join("");
  }
  return "\n" + all.map(({ target, waker, value }) =>
    [
      `    ${"waker:".padEnd(16)} ${escapeText(waker.comm)} ${target.shownId}`,
      // The waker's stack outermost first, down to the wakeup.
      ...frames(waker, o).toReversed().map((f) => `    ${escapeText(f)}`),
      `    ${"--".padEnd(16)} --`,
      ...frames(target, o).map((f) => `    ${escapeText(f)}`),
      `    ${"target:".padEnd(16)} ${escapeText(target.comm)} ${target.shownId}`,
      `        ${value}`,
      "",
    ].join("\n") + "\n"
  ).join("");
}

function json(stacks: SymbolizedStack[]): Record<string, unknown>[] {
  const side = (s: SymbolizedStack) => ({
    pid: s.pid,
    comm: s.comm,
    ...(s.kernel === undefined ? {} : { kernel: s.kernel === "missed" ? null : s.kernel }),
    ...(s.user === undefined ? {} : { user: s.user === "missed" ? null : s.user }),
  });
  return pairs(stacks).map(({ target, waker, value }) => ({
    tid: target.shownId,
    target: side(target),
    waker: side(waker),
    value,
  }));
}

function banner(o: Options): string {
  return `Tracing blocked time (us) by ${stacksShown(o.report)} off-CPU and waker stack` +
    `${untilWhen(o.duration)}\n`;
}

/** Whose blocking counts, from -p, -t, -u, -k (one at most). */
function threadsOf(
  v: { pid?: number; tid?: number; userThreadsOnly: boolean; kernelThreadsOnly: boolean },
): Options["threads"] {
  const given = [
    v.pid !== undefined && "-p",
    v.tid !== undefined && "-t",
    v.userThreadsOnly && "-u",
    v.kernelThreadsOnly && "-k",
  ].filter(Boolean);
  if (given.length > 1) throw new UsageError(`${given.join(" and ")} cannot be used together`);
  if (v.pid !== undefined) return { kind: "pid", pid: v.pid };
  if (v.tid !== undefined) return { kind: "tid", tid: v.tid };
  return { kind: v.userThreadsOnly ? "user" : v.kernelThreadsOnly ? "kernel" : "all" };
}

export const tool = stackTool({
  name: "offwaketime",
  summary: "Summarize blocked time by off-CPU stack and waker stack.",
  examples: [
    ["offwaketime", "trace off-CPU + waker stack time until Ctrl-C"],
    ["offwaketime 5", "trace for 5 seconds only"],
    ["offwaketime -f 5", "5 seconds, and output in folded format"],
    ["offwaketime -m 1000", "trace only events that last more than 1000 usec"],
    ["offwaketime -M 9000", "trace only events that last less than 9000 usec"],
    ["offwaketime -p 185", "only trace threads for PID 185"],
    ["offwaketime -t 188", "only trace thread 188"],
    ["offwaketime -u", "only trace user threads (no kernel)"],
    ["offwaketime -k", "only trace kernel threads (no user)"],
    ["offwaketime -U", "only show user space stacks (no kernel)"],
    ["offwaketime -K", "only show kernel space stacks (no user)"],
  ],
  flags: {
    pid: option("PID", "trace this PID only", pidValue, { short: "p" }),
    tid: option("TID", "trace this TID only", tidValue, { short: "t" }),
    userThreadsOnly: flag("user threads only (no kernel threads)", "u", "user-threads-only"),
    kernelThreadsOnly: flag("kernel threads only (no user threads)", "k", "kernel-threads-only"),
    ...stackFlags(1024),
    minBlockTime: option(
      "US",
      "only blocks of at least US microseconds (1)",
      integer(1, 2 ** 53, "min block time"),
      { short: "m", long: "min-block-time" },
    ),
    maxBlockTime: option(
      "US",
      "only blocks of at most US microseconds",
      integer(1, 2 ** 53, "max block time"),
      { short: "M", long: "max-block-time" },
    ),
  },
  positionals: { duration: positional("duration", "duration of trace, in seconds", seconds) },
  variants: [["-p", "1"], ["-t", "1"], ["-u", "-f"], ["-k", "-K"], ["-U"], ["-M", "5000000000"]],
  options: (v): Options => {
    const threads = threadsOf(v);
    const report = stackReportOptions(v, {
      dropKernelFrame: (name) =>
        /^(bpf_prog_|bpf_trace_run\d|__traceiter_|__bpf_trace_)/.test(name),
    });
    if (threads.kind === "kernel" && v.userStacksOnly) {
      throw new UsageError("displaying user stacks for kernel threads doesn't make sense");
    }
    const minUs = v.minBlockTime ?? 1;
    if (v.maxBlockTime !== undefined && v.maxBlockTime < minUs) {
      throw new UsageError("the max block time is below the min block time");
    }
    return {
      threads,
      minUs,
      maxUs: v.maxBlockTime,
      stackSize: v.stackStorageSize,
      duration: v.duration,
      report,
    };
  },
}, {
  unit: "us",
  maps: buildMaps,
  build: (o, maps) => [switchProgram(o, maps), wakeupProgram(o, maps)].map((p) => p.build()),
  banner,
  pidOffset: KEY.t + SIDE.tgid,
  read: readCounts,
  text,
  json: (stacks) => json(stacks),
});

if (import.meta.main) await tool.main();
