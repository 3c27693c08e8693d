#!/usr/bin/env -S deno run -A
/**
 * profile: a CPU profiler. Samples what every CPU is running at a timed
 * interval (49 Hz by default) and counts the samples by process, user stack
 * and kernel stack, in the kernel; only the unique stacks and their counts
 * come to user space, at the end. Folded output (-f) feeds flame graphs:
 *
 *     # deno run -A tools/profile.ts -af -F 49 30 | deno run tools/flamegraph.ts > out.svg
 *
 * Events: a software cpu-clock perf event per CPU (PERF_COUNT_SW_CPU_CLOCK,
 * sampling at -F Hz or every -c nanoseconds); stacks from bpf_get_stackid
 * into a stack trace map (frame-pointer walks: build with
 * -fno-omit-frame-pointer for full user stacks). Output and flags follow
 * bcc's profile.
 *
 *     # deno run -A tools/profile.ts 5
 *     Sampling at 49 Hertz of all threads by user + kernel stack for 5 secs.
 *
 *         clear_page_erms
 *         ...
 *         do_syscall_64
 *         entry_SYSCALL_64_after_hwframe
 *         __GI___libc_write
 *         main
 *         -                dd (4120)
 *             12
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
import { flag, integer, option, optionWithDefault, positional, seconds } from "../lib/cli/flags.ts";
import { onlineCpus, type Session } from "../lib/cli/session.ts";
import { UsageError } from "../lib/cli/usage.ts";
import { kernelLayouts } from "../lib/dsl/layouts.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import { Probe } from "../lib/dsl/program.ts";
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
  pids?: number[];
  tids?: number[];
  userStacks: boolean;
  kernelStacks: boolean;
  frequency?: number;
  period?: number;
  includeIdle: boolean;
  cpu?: number;
  hashSize: number;
  stackSize: number;
  /** --perf-max-stack-depth: frames kept of each stack, kernel and user. */
  maxDepth: number;
}

/** The most PIDs/TIDs -p and -L take (each is one compare in the program). */
const MAX_IDS = 16;
/** The most stack counts the counts hash may hold (about 80 bytes each, preallocated). */
const MAX_HASH_STORAGE = 1 << 20;

/** "185" or "185,186": process or thread IDs. */
function idList(what: "PID" | "TID") {
  const one = integer(1, 4194304, what);
  return (text: string, name: string): number[] => {
    const ids = text.split(",").map((s) => one(s.trim(), name));
    if (ids.length > MAX_IDS) throw new UsageError(`at most ${MAX_IDS} ${what}s`);
    return ids;
  };
}

/** -F: the kernel refuses rates above kernel.perf_event_max_sample_rate; say so up front. */
function frequency(text: string, name: string): number {
  const hz = integer(1, 1_000_000_000, "frequency")(text, name);
  let max: number | undefined;
  try {
    max = Number(Deno.readTextFileSync("/proc/sys/kernel/perf_event_max_sample_rate").trim());
  } catch { /* unreadable: the kernel will say */ }
  if (max !== undefined && hz > max) {
    throw new UsageError(
      `invalid frequency '${text}': above kernel.perf_event_max_sample_rate (${max})`,
    );
  }
  return hz;
}

// --- BPF side ---------------------------------------------------------------

const COMM_LEN = 16;
/** counts key: u32 tgid, s32 user stack id, s32 kernel stack id, char comm[16]. */
const KEY = { pid: 0, userStack: 4, kernelStack: 8, comm: 12, size: 28 } as const;
/** struct bpf_perf_event_data: pt_regs (168 bytes), sample_period, addr. */
const PERF_EVENT_DATA_SIZE = 184;

function buildMaps(o: Options) {
  return {
    counts: defineMap({
      name: "counts",
      type: "hash",
      keySize: KEY.size,
      valueSize: 8,
      maxEntries: o.hashSize,
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

/** Returns unless `reg` equals one of `ids`. */
function allowOnly(p: Probe, reg: typeof r1, ids: number[]): void {
  const keep = p.label();
  for (const id of ids) p.jumpIf(reg, "==", id, keep);
  p.ret(0);
  p.bind(keep);
}

function buildProgram(o: Options, maps: Maps) {
  const p = new Probe(
    "profile",
    "perf_event",
    {
      kind: "perf_event",
      frequency: o.frequency,
      period: o.period,
      cpus: o.cpu === undefined ? undefined : [o.cpu],
    },
    { kind: "none" },
    kernelLayouts,
    PERF_EVENT_DATA_SIZE,
  );
  p.call("get_current_pid_tgid").mov(r7, r0);
  // The idle task is TID 0 on every CPU.
  if (!o.includeIdle) p.mov32(r1, r7).returnIf(r1, "==", 0);
  if (o.pids) {
    p.mov(r1, r7).rsh(r1, 32);
    allowOnly(p, r1, o.pids);
  }
  if (o.tids) {
    p.mov32(r1, r7);
    allowOnly(p, r1, o.tids);
  }

  const key = p.stack(KEY.size);
  p.zeroStack(key, Math.ceil(KEY.size / 8) * 8);
  p.mov(r1, r7).rsh(r1, 32).store("u32", r10, key + KEY.pid, r1);
  p.stackPtr(r1, key + KEY.comm).mov(r2, COMM_LEN).call("get_current_comm");
  if (o.kernelStacks) stackId(p, r8, maps.stacks, { user: false, errors: maps.errors });
  else p.mov(r8, -1);
  if (o.userStacks) stackId(p, r9, maps.stacks, { user: true, errors: maps.errors });
  else p.mov(r9, -1);
  p.store("u32", r10, key + KEY.kernelStack, r8).store("u32", r10, key + KEY.userStack, r9);

  const zero = p.stack(8);
  p.lookupOrInit(maps.counts, key, zero);
  p.if(r0, "!=", 0, () => p.mov(r1, 1).atomicAdd("u64", r0, 0, r1));
  return p.ret(0).build();
}

// --- user side --------------------------------------------------------------

function banner(o: Options): string {
  const rate = o.frequency !== undefined ? `${o.frequency} Hertz` : `every ${o.period} events`;
  const who = o.pids
    ? `PID ${o.pids.join(",")}`
    : o.tids
    ? `TID ${o.tids.join(",")}`
    : "all threads";
  const cpu = o.cpu === undefined ? "" : ` on CPU#${o.cpu}`;
  return `Sampling at ${rate} of ${who} by ${stacksShown(o.report)} stack${cpu}` +
    `${untilWhen(o.duration)}\n`;
}

function readCounts(session: Session, maps: Maps) {
  return session.maps.get(maps.counts)!.entries().map(([k, v]) => {
    const key = new DataView(k.buffer);
    const pid = key.getUint32(KEY.pid, true);
    return {
      pid,
      shownId: pid,
      comm: decodeCString(k.subarray(KEY.comm, KEY.comm + COMM_LEN)),
      userStackId: key.getInt32(KEY.userStack, true),
      kernelStackId: key.getInt32(KEY.kernelStack, true),
      value: Number(new DataView(v.buffer).getBigUint64(0, true)),
    };
  });
}

export const tool = stackTool({
  name: "profile",
  summary: "Profile CPU stack traces at a timed interval.",
  examples: [
    ["profile", "profile stack traces at 49 Hertz until Ctrl-C"],
    ["profile -F 99", "profile stack traces at 99 Hertz"],
    ["profile -c 1000000", "profile stack traces every 1 in a million events"],
    ["profile 5", "profile at 49 Hertz for 5 seconds only"],
    ["profile -f 5", "output in folded format for flame graphs"],
    ["profile -p 185", "only profile process with PID 185"],
    ["profile -L 185", "only profile thread with TID 185"],
    ["profile -U", "only show user space stacks (no kernel)"],
    ["profile -K", "only show kernel space stacks (no user)"],
    ["profile -af -F 49 30", "30 s, folded, kernel frames marked: flame graphs"],
  ],
  flags: {
    pid: option("PID", "profile these processes only (comma separated PIDs)", idList("PID"), {
      short: "p",
    }),
    tid: option("TID", "profile these threads only (comma separated TIDs)", idList("TID"), {
      short: "L",
    }),
    frequency: option("HZ", "sample frequency, Hertz (default 49)", frequency, { short: "F" }),
    count: option("N", "sample period, number of events (cpu-clock: ns)", integer(1, 2 ** 53), {
      short: "c",
    }),
    annotations: flag("add _[k] annotations to kernel frames", "a"),
    includeIdle: flag("include CPU idle stacks", "I", "include-idle"),
    hashStorageSize: optionWithDefault(
      "N",
      "stack counts that can be stored (40960)",
      integer(1, MAX_HASH_STORAGE, "hash storage size"),
      40960,
      { long: "hash-storage-size" },
    ),
    ...stackFlags(16384),
    cpu: option("CPU", "cpu number to run profile on", integer(0, 4095, "CPU"), { short: "C" }),
    perfMaxStackDepth: optionWithDefault(
      "N",
      `the limit for both kernel and user stacks (${PERF_MAX_STACK_DEPTH})`,
      integer(1, PERF_MAX_STACK_DEPTH, "stack depth"),
      PERF_MAX_STACK_DEPTH,
      { long: "perf-max-stack-depth" },
    ),
  },
  positionals: { duration: positional("duration", "duration of trace, in seconds", seconds) },
  variants: [["-p", "1"], ["-L", "1,2"], ["-U"], ["-K"], ["-I"], ["-c", "1000000"], ["-C", "0"], [
    "--perf-max-stack-depth",
    "5",
  ]],
  options: (v): Options => {
    if (v.pid && v.tid) throw new UsageError("-p and -L cannot be used together");
    if (v.frequency !== undefined && v.count !== undefined) {
      throw new UsageError("-F and -c cannot be used together");
    }
    const report = stackReportOptions(v, { annotate: v.annotations });
    return {
      pids: v.pid,
      tids: v.tid,
      userStacks: report.user,
      kernelStacks: report.kernel,
      frequency: v.frequency ?? (v.count === undefined ? 49 : undefined),
      period: v.count,
      includeIdle: v.includeIdle,
      cpu: v.cpu,
      hashSize: v.hashStorageSize,
      stackSize: v.stackStorageSize,
      maxDepth: v.perfMaxStackDepth,
      duration: v.duration,
      report,
    };
  },
}, {
  unit: "samples",
  // --pprof: cpu/nanoseconds per sample (a cpu-clock period counts nanoseconds)
  samplePeriodNs: (o) => o.frequency !== undefined ? 1e9 / o.frequency : o.period,
  maps: buildMaps,
  build: (o, maps) => [buildProgram(o, maps)],
  check: (o) => {
    if (o.cpu !== undefined && !onlineCpus().includes(o.cpu)) {
      throw new UsageError(`CPU ${o.cpu} is not online`);
    }
  },
  banner,
  pidOffset: KEY.pid,
  read: readCounts,
  after: (counts, o) => {
    const hashFull = counts.length >= o.hashSize;
    return {
      warnings: hashFull
        ? ["WARNING: hash table full. Consider increasing --hash-storage-size."]
        : [],
      json: { hashFull },
    };
  },
});

if (import.meta.main) await tool.main();
