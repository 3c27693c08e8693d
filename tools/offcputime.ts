#!/usr/bin/env -S deno run -A
/**
 * offcputime: summarize the time threads spend blocked off CPU, by user and
 * kernel stack trace, in microseconds. Where CPU profiling (profile) shows
 * what runs, this shows what waits: disk and network I/O, locks, sleeps,
 * paging, and being preempted. Folded output (-f) makes off-CPU flame graphs:
 *
 *     # deno run -A tools/offcputime.ts -f 10 | deno run tools/flamegraph.ts --colors io \
 *           --countname us --title "Off-CPU Time Flame Graph" > offcpu.svg
 *
 * Events: sched_switch as a BTF-typed tracepoint. When a thread switches
 * out, its stacks (bpf_get_stackid, current = the thread leaving) and the
 * time are saved; when it switches back in, the time away is added to that
 * stack's total, in the kernel. The idle threads are not counted. Output and
 * flags follow bcc's offcputime.
 *
 *     # deno run -A tools/offcputime.ts -p 4120 5
 *     Tracing off-CPU time (us) of PID 4120 by user + kernel stack for 5 secs.
 *
 *         schedule
 *         do_nanosleep
 *         hrtimer_nanosleep
 *         ...
 *         clock_nanosleep
 *         main
 *         -                sleep (4120)
 *             1000184
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
  optionWithDefault,
  pidValue,
  positional,
  seconds,
  tidValue,
} from "../lib/cli/flags.ts";
import type { Session } from "../lib/cli/session.ts";
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
import { decodeCString } from "../lib/format/escape.ts";

/** What the operator asked for. */
interface Options extends StackOptions {
  /** Whose blocking counts. */
  threads:
    | { kind: "all" }
    | { kind: "pid"; pids: number[] }
    | { kind: "tid"; tids: number[] }
    | { kind: "user" }
    | { kind: "kernel" };
  userStacks: boolean;
  kernelStacks: boolean;
  minUs: number;
  maxUs?: number;
  state?: number;
  stackSize: number;
  /** --perf-max-stack-depth: frames kept of each stack, kernel and user. */
  maxDepth: number;
}

/** The most PIDs/TIDs -p and -t take (each is one compare in the program). */
const MAX_IDS = 16;

/** "185" or "185,186": process or thread IDs, each checked as `one` checks it. */
function idList(one: (text: string, name: string) => number, what: string) {
  return (text: string, name: string): number[] => {
    const ids = text.split(",").map((s) => one(s.trim(), name));
    if (ids.length > MAX_IDS) throw new UsageError(`at most ${MAX_IDS} ${what}s`);
    return ids;
  };
}

// --- BPF side ---------------------------------------------------------------

const PF_KTHREAD = 0x00200000;
const COMM_LEN = 16;
/** The counts key: u32 tid, u32 tgid, s32 user stack id, s32 kernel stack id. */
const KEY = { tid: 0, tgid: 4, userStack: 8, kernelStack: 12, size: 16 } as const;
/** start value: the key the thread will be counted under, then when it left the CPU. */
const START = { key: 0, ts: 16, size: 24 } as const;
/** counts value: microseconds off CPU, then the command name. */
const VALUE = { us: 0, comm: 8, size: 24 } as const;

function buildMaps(o: Options) {
  return {
    start: defineMap({
      name: "start",
      type: "hash",
      keySize: 4,
      valueSize: START.size,
      maxEntries: 10240,
    }),
    counts: defineMap({
      name: "counts",
      type: "hash",
      keySize: KEY.size,
      valueSize: VALUE.size,
      maxEntries: 10240,
    }),
    stacks: defineStackMap({
      name: "stack_traces",
      storageSize: o.stackSize,
      maxDepth: o.maxDepth,
    }),
    errors: defineStackErrorMap(),
  };
}

type Maps = ReturnType<typeof buildMaps>;

/** Jumps to `skip` unless r1 equals one of `ids`. */
function allowOnly(p: Probe, ids: number[], skip: ReturnType<Probe["label"]>): void {
  const keep = p.label();
  for (const id of ids) p.jumpIf(r1, "==", id, keep);
  p.goto(skip);
  p.bind(keep);
}

/** Jumps to `skip` unless the thread leaving the CPU (in r7) is one we trace. */
function threadFilter(p: Probe, o: Options, skip: ReturnType<Probe["label"]>): void {
  const t = o.threads;
  if (t.kind === "pid") allowOnly(p.field(r1, r7, "task_struct", "tgid"), t.pids, skip);
  if (t.kind === "tid") allowOnly(p.field(r1, r7, "task_struct", "pid"), t.tids, skip);
  if (t.kind === "user") p.field(r1, r7, "task_struct", "flags").jumpIf(r1, "&", PF_KTHREAD, skip);
  if (t.kind === "kernel") {
    p.field(r1, r7, "task_struct", "flags").and(r1, PF_KTHREAD).jumpIf(r1, "==", 0, skip);
  }
  if (o.state === undefined) return;
  if (p.hasCtx("prev_state")) p.ctx(r1, "prev_state");
  else p.field(r1, r7, "task_struct", "__state");
  if (o.state === 0) p.jumpIf(r1, "!=", 0, skip);
  else p.and(r1, o.state).jumpIf(r1, "==", 0, skip);
}

/** The thread leaving the CPU: save its stacks and the time, keyed by TID. */
function switchOut(p: Probe, o: Options, maps: Maps): void {
  const skip = p.label();
  p.ctx(r7, "prev");
  p.field(r8, r7, "task_struct", "pid").jumpIf(r8, "==", 0, skip); // idle
  threadFilter(p, o, skip);
  const start = p.stack(START.size);
  p.store("u32", r10, start + START.key + KEY.tid, r8);
  p.field(r1, r7, "task_struct", "tgid").store("u32", r10, start + START.key + KEY.tgid, r1);
  // A kernel thread has no user stack: skip the walk.
  p.mov(r9, -1);
  if (o.userStacks) {
    p.field(r1, r7, "task_struct", "flags").and(r1, PF_KTHREAD);
    p.if(r1, "==", 0, () => stackId(p, r9, maps.stacks, { user: true, errors: maps.errors }));
  }
  p.store("u32", r10, start + START.key + KEY.userStack, r9);
  if (o.kernelStacks) stackId(p, r9, maps.stacks, { user: false, errors: maps.errors });
  else p.mov(r9, -1);
  p.store("u32", r10, start + START.key + KEY.kernelStack, r9);
  p.ktime(r0).store("u64", r10, start + START.ts, r0);
  const tid = p.stack(4);
  p.store("u32", r10, tid, r8).update(maps.start, tid, start);

  // The stack's total starts at zero, with the thread's name (current is still prev).
  const value = p.stack(VALUE.size);
  p.store("u64", r10, value + VALUE.us, 0);
  p.stackPtr(r1, value + VALUE.comm).mov(r2, COMM_LEN).call("get_current_comm");
  p.update(maps.counts, start + START.key, value, 1 /* BPF_NOEXIST */);
  p.bind(skip);
}

/** The thread coming back: add its time away to the stack it left with. */
function switchIn(p: Probe, o: Options, maps: Maps): void {
  const done = p.label(), cleanup = p.label();
  const tid = p.stack(4);
  p.ctx(r7, "next").field(r1, r7, "task_struct", "pid").store("u32", r10, tid, r1);
  p.lookup(maps.start, tid).jumpIf(r0, "==", 0, done).mov(r8, r0);
  p.ktime(r9).load(r1, "u64", r8, START.ts).sub(r9, r1);
  p.jumpIf(r9, "s<", 0, cleanup).div(r9, 1000);
  p.jumpIf(r9, "<", o.minUs, cleanup);
  if (o.maxUs !== undefined) {
    if (o.maxUs <= 0x7fffffff) p.jumpIf(r9, ">", o.maxUs, cleanup);
    else p.mov64(r1, BigInt(o.maxUs)).jumpIf(r9, ">", r1, cleanup);
  }
  const key = p.stack(KEY.size);
  for (let off = 0; off < KEY.size; off += 8) {
    p.load(r1, "u64", r8, START.key + off).store("u64", r10, key + off, r1);
  }
  p.lookup(maps.counts, key).jumpIf(r0, "==", 0, cleanup);
  p.atomicAdd("u64", r0, VALUE.us, r9);
  p.bind(cleanup).delete(maps.start, tid);
  p.bind(done);
}

function buildProgram(o: Options, maps: Maps) {
  const p = tpBtf("sched_switch", { name: "offcputime" });
  switchOut(p, o, maps);
  switchIn(p, o, maps);
  return p.ret(0).build();
}

// --- user side --------------------------------------------------------------

function banner(o: Options): string {
  const t = o.threads;
  const who = t.kind === "pid"
    ? `PID ${t.pids.join(",")}`
    : t.kind === "tid"
    ? `TID ${t.tids.join(",")}`
    : t.kind === "all"
    ? "all threads"
    : `${t.kind} threads`;
  return `Tracing off-CPU time (us) of ${who} by ${stacksShown(o.report)} stack` +
    `${untilWhen(o.duration)}\n`;
}

function readCounts(session: Session, maps: Maps) {
  return session.maps.get(maps.counts)!.entries().flatMap(([k, v]) => {
    const key = new DataView(k.buffer), value = new DataView(v.buffer);
    const us = Number(value.getBigUint64(VALUE.us, true));
    if (us === 0) return []; // switched out, not yet back
    return [{
      pid: key.getUint32(KEY.tgid, true),
      shownId: key.getUint32(KEY.tid, true),
      comm: decodeCString(v.subarray(VALUE.comm, VALUE.comm + COMM_LEN)),
      userStackId: key.getInt32(KEY.userStack, true),
      kernelStackId: key.getInt32(KEY.kernelStack, true),
      value: us,
    }];
  });
}

/** Whose blocking counts, from -p, -t, -u, -k (one at most). */
function threadsOf(
  v: { pid?: number[]; tid?: number[]; userThreadsOnly: boolean; kernelThreadsOnly: boolean },
): Options["threads"] {
  const given = [
    v.pid !== undefined && "-p",
    v.tid !== undefined && "-t",
    v.userThreadsOnly && "-u",
    v.kernelThreadsOnly && "-k",
  ].filter(Boolean);
  if (given.length > 1) throw new UsageError(`${given.join(" and ")} cannot be used together`);
  if (v.pid !== undefined) return { kind: "pid", pids: v.pid };
  if (v.tid !== undefined) return { kind: "tid", tids: v.tid };
  return { kind: v.userThreadsOnly ? "user" : v.kernelThreadsOnly ? "kernel" : "all" };
}

export const tool = stackTool({
  name: "offcputime",
  summary: "Summarize off-CPU time by stack trace.",
  examples: [
    ["offcputime", "trace off-CPU stack time until Ctrl-C"],
    ["offcputime 5", "trace for 5 seconds only"],
    ["offcputime -f 5", "5 seconds, and output in folded format"],
    ["offcputime -m 1000", "trace only events that last more than 1000 usec"],
    ["offcputime -M 10000", "trace only events that last less than 10000 usec"],
    ["offcputime -p 185", "only trace threads for PID 185"],
    ["offcputime -p 185,186", "only trace threads of PIDs 185 and 186"],
    ["offcputime -t 188", "only trace thread 188"],
    ["offcputime -u", "only trace user threads (no kernel)"],
    ["offcputime -k", "only trace kernel threads (no user)"],
    ["offcputime -U", "only show user space stacks (no kernel)"],
    ["offcputime -K", "only show kernel space stacks (no user)"],
  ],
  flags: {
    pid: option("PID", "trace these PIDs only (comma separated)", idList(pidValue, "PID"), {
      short: "p",
    }),
    tid: option("TID", "trace these TIDs only (comma separated)", idList(tidValue, "TID"), {
      short: "t",
    }),
    userThreadsOnly: flag("user threads only (no kernel threads)", "u", "user-threads-only"),
    kernelThreadsOnly: flag("kernel threads only (no user threads)", "k", "kernel-threads-only"),
    ...stackFlags(1024),
    minBlockTime: option(
      "US",
      "only blocks of at least US microseconds (1)",
      integer(1, 2 ** 53, "min block time"),
      {
        short: "m",
        long: "min-block-time",
      },
    ),
    maxBlockTime: option(
      "US",
      "only blocks of at most US microseconds",
      integer(1, 2 ** 53, "max block time"),
      {
        short: "M",
        long: "max-block-time",
      },
    ),
    state: option("STATE", "only this thread state bitmask (2: D state)", integer(0, 2 ** 32 - 1)),
    perfMaxStackDepth: optionWithDefault(
      "N",
      `the limit for both kernel and user stacks (${PERF_MAX_STACK_DEPTH})`,
      integer(1, PERF_MAX_STACK_DEPTH, "stack depth"),
      PERF_MAX_STACK_DEPTH,
      { long: "perf-max-stack-depth" },
    ),
  },
  positionals: { duration: positional("duration", "duration of trace, in seconds", seconds) },
  variants: [
    ["-p", "1"],
    ["-t", "1,2"],
    ["--perf-max-stack-depth", "5"],
    ["-u"],
    ["-k"],
    ["-U"],
    ["-K"],
    ["-M", "5000000000"],
    [
      "--state",
      "2",
    ],
  ],
  options: (v): Options => {
    const threads = threadsOf(v);
    const report = stackReportOptions(v, {
      // The BPF program and the tracepoint machinery that called it.
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
      userStacks: report.user,
      kernelStacks: report.kernel,
      minUs,
      maxUs: v.maxBlockTime,
      state: v.state,
      stackSize: v.stackStorageSize,
      maxDepth: v.perfMaxStackDepth,
      duration: v.duration,
      report,
    };
  },
}, {
  unit: "us",
  maps: buildMaps,
  build: (o, maps) => [buildProgram(o, maps)],
  banner,
  pidOffset: KEY.tgid,
  read: readCounts,
});

if (import.meta.main) await tool.main();
