#!/usr/bin/env -S deno run -A
/**
 * runqlat: summarize run queue (scheduler) latency as a histogram: the time
 * from a task becoming runnable (wakeup, or preempted while runnable) to it
 * running on a CPU.
 *
 * Events: sched_wakeup, sched_wakeup_new, sched_switch, as BTF-typed
 * tracepoints (raw tracepoints with probe reads where vmlinux BTF is absent).
 * Output and flags follow libbpf-tools runqlat.
 *
 *     # deno run -A tools/runqlat.ts 1 1
 *     Tracing run queue latency... Hit Ctrl-C to end.
 *
 *          usecs               : count    distribution
 *              0 -> 1          : 233      |***********                             |
 *              2 -> 3          : 742      |************************************    |
 *              4 -> 7          : 203      |**********                              |
 */
// Direct imports, not ../mod.ts: the tool starts in tens of milliseconds, and
// every module loaded (mod.ts pulls in ELF, kallsyms, ring buffers...) costs
// start-up time and memory.
import { histogramTool, type IntervalOptions } from "../lib/cli/drivers/interval.ts";
import {
  cgroupPath,
  cgroupV2Root,
  count,
  flag,
  option,
  pidValue,
  positional,
  seconds,
} from "../lib/cli/flags.ts";
import { drainHistograms } from "../lib/cli/hist_maps.ts";
import type { Session } from "../lib/cli/session.ts";
import { UsageError } from "../lib/cli/usage.ts";
import { defineHistMap } from "../lib/dsl/hist.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import { type Probe, tpBtf } from "../lib/dsl/program.ts";
import { r0, r1, r10, r2, r3, r7, r8, r9 } from "../lib/dsl/registers.ts";
import { decodeCString } from "../lib/format/escape.ts";
import { setCgroup } from "../lib/kernel/map.ts";

const MAX_SLOTS = 26;
const TASK_RUNNING = 0;
const COMM_LEN = 16;

/** What the operator asked for. */
interface Options extends IntervalOptions {
  milliseconds: boolean;
  /** Histogram key: one global histogram, or per process, thread or PID namespace. */
  per: "all" | "pid" | "tid" | "pidns";
  pid?: number;
  /** cgroup v2 directory: only events whose current task is inside it count. */
  cgroup?: string;
}

// --- BPF side ---------------------------------------------------------------

/** Per-thread time of becoming runnable, by TID. */
const start = defineMap({
  name: "start",
  type: "hash",
  keySize: 4,
  valueSize: 8,
  maxEntries: 10240,
});
/** The one global histogram: per-CPU u64 counters, no atomics needed. */
const hist = defineHistMap({ name: "hist", slots: MAX_SLOTS, perCpu: true });
/** Histograms per process/thread/namespace: u32 slots[MAX_SLOTS] then comm[16]. */
const hists = defineHistMap({ name: "hists", slots: MAX_SLOTS, extraBytes: COMM_LEN });
/** The same with a running sum of the nanoseconds waited (--prometheus: the exported _sum). */
const histSum = defineHistMap({ name: "hist", slots: MAX_SLOTS, perCpu: true, sum: true });
const histsSum = defineHistMap({
  name: "hists",
  slots: MAX_SLOTS,
  extraBytes: COMM_LEN,
  sum: true,
});

/** The histogram map these options fill. */
function histMapOf(o: Options) {
  if (o.prometheus) return o.per === "all" ? histSum : histsSum;
  return o.per === "all" ? hist : hists;
}

/** The cgroup for -c, in slot 0 (as libbpf-tools: the current task must be under it). */
const cgroupMap = defineMap({
  name: "cgroup_map",
  type: "cgroup_array",
  keySize: 4,
  valueSize: 4,
  maxEntries: 1,
});

/** With -c: return unless the current task is under the cgroup. */
function cgroupFilter(p: Probe, o: Options): void {
  if (o.cgroup === undefined) return;
  p.loadMap(r1, cgroupMap).mov(r2, 0).call("current_task_under_cgroup").returnIf(r0, "==", 0);
}

/** Records "runnable since now" for the task in `task` (r7), unless filtered out. */
function enqueue(p: Probe, task: typeof r7, o: Options): void {
  const done = p.label();
  if (o.pid !== undefined) {
    p.field(r1, task, "task_struct", "tgid").jumpIf(r1, "!=", o.pid, done);
  }
  const key = p.stack(4);
  p.field(r1, task, "task_struct", "pid").jumpIf(r1, "==", 0, done);
  p.store("u32", r10, key, r1).startTimer(start, key);
  p.bind(done);
}

function wakeupProgram(event: string, o: Options, probe: ProbeFactory): Probe {
  const p = probe(event);
  cgroupFilter(p, o);
  p.ctx(r7, "p");
  enqueue(p, r7, o);
  return p.ret(0);
}

function switchProgram(o: Options, probe: ProbeFactory): Probe {
  const p = probe("sched_switch");
  cgroupFilter(p, o);
  // A task preempted while still runnable goes back on the run queue now.
  p.ctx(r7, "prev");
  if (p.hasCtx("prev_state")) p.ctx(r1, "prev_state");
  else p.field(r1, r7, "task_struct", "__state");
  p.if(r1, "==", TASK_RUNNING, () => enqueue(p, r7, o));

  // The task switched in: how long did it wait?
  const key = p.stack(4), cleanup = p.label(), out = p.label();
  p.ctx(r7, "next").field(r1, r7, "task_struct", "pid").store("u32", r10, key, r1);
  p.elapsed(r8, start, key, out, cleanup);
  const ns = o.prometheus ? p.stack(8) : undefined;
  if (ns !== undefined) p.store("u64", r10, ns, r8);
  p.div(r8, o.milliseconds ? 1_000_000 : 1000);
  p.log2(r9, r8, r1).clamp(r9, MAX_SLOTS - 1);

  const hkey = p.stack(4);
  if (o.per === "all") p.store("u32", r10, hkey, 0);
  else {
    if (o.per === "pid") p.field(r1, r7, "task_struct", "tgid");
    else if (o.per === "tid") p.field(r1, r7, "task_struct", "pid");
    else p.field(r1, r7, "task_struct", "nsproxy->pid_ns_for_children->ns.inum");
    p.store("u32", r10, hkey, r1);
  }
  const histMap = histMapOf(o);
  p.histAdd(histMap, hkey, r9, {
    zeroOff: o.per === "all" ? undefined : p.stack(histMap.valueSize),
    sum: ns,
    valueReg: r8,
    // comm of the task switched in, once per entry (as libbpf-tools does)
    fillExtra: (value) =>
      p.mov(r1, value).add(r1, 4 * MAX_SLOTS).mov(r2, COMM_LEN).mov(r3, r7)
        .add(r3, commOffset(p)).call("probe_read_kernel_str"),
  });
  p.bind(cleanup).delete(start, key);
  p.bind(out);
  return p.ret(0);
}

function commOffset(p: Probe): number {
  return p.layouts.structField("task_struct", "comm").offset;
}

type ProbeFactory = (event: string) => Probe;

/** The three programs, on BTF-typed tracepoints (struct offsets come from vmlinux BTF). */
function buildPrograms(o: Options) {
  const probe: ProbeFactory = (event) =>
    tpBtf(event, { name: `runqlat_${event.replace("sched_", "")}` });
  return [
    wakeupProgram("sched_wakeup", o, probe),
    wakeupProgram("sched_wakeup_new", o, probe),
    switchProgram(o, probe),
  ].map((p) => p.build());
}

// --- user side --------------------------------------------------------------

function readHistograms(session: Session, o: Options) {
  const def = histMapOf(o);
  const histograms = drainHistograms(session.maps.get(def)!, def).map((h) => {
    const sum = h.sum === undefined ? {} : { sum: h.sum / 1e9 }; // ns -> seconds
    if (o.per === "all") return { slots: h.slots, ...sum };
    const key = new DataView(h.key.buffer).getUint32(0, true);
    const comm = decodeCString(h.extra);
    return {
      heading: `${o.per} = ${key} ${comm}`,
      labels: { [o.per]: key, comm },
      slots: h.slots,
      ...sum,
    };
  });
  return { unit: o.milliseconds ? "msecs" : "usecs", histograms };
}

export const tool = histogramTool({
  name: "runqlat",
  summary: "Summarize run queue (scheduler) latency as a histogram.",
  examples: [
    ["runqlat", "summarize run queue latency as a histogram"],
    ["runqlat 1 10", "print 1 second summaries, 10 times"],
    ["runqlat -mT 1", "1s summaries, milliseconds, and timestamps"],
    ["runqlat -P", "show each PID separately"],
    ["runqlat -p 185", "trace PID 185 only"],
    ["runqlat -c CG", "trace processes under cgroup v2 path CG"],
  ],
  flags: {
    timestamp: flag("include timestamp on output", "T"),
    milliseconds: flag("millisecond histogram", "m"),
    pidnss: flag("print a histogram per PID namespace"),
    pids: flag("print a histogram per process ID", "P"),
    tids: flag("print a histogram per thread ID", "L"),
    pid: option("PID", "trace this PID only", pidValue, { short: "p" }),
    cgroup: option("CG", "trace processes in this cgroup v2 path only", cgroupPath, { short: "c" }),
  },
  positionals: {
    interval: positional("interval", "output interval, in seconds", seconds),
    count: positional("count", "number of outputs", count),
  },
  variants: [["-P"], ["-L"], ["--pidnss"], ["-p", "1"], ["-c", cgroupV2Root()]],
  options: (v): Options => {
    const per = (["pid", "tid", "pidns"] as const).filter((k) =>
      ({ pid: v.pids, tid: v.tids, pidns: v.pidnss })[k]
    );
    if (per.length > 1) throw new UsageError("--pidnss, -P and -L cannot be used together");
    return { ...v, per: per[0] ?? "all" };
  },
}, {
  banner: () => "Tracing run queue latency... Hit Ctrl-C to end.",
  build: buildPrograms,
  initMaps: (o, maps) => o.cgroup !== undefined && setCgroup(maps.get(cgroupMap)!, o.cgroup),
  read: readHistograms,
});

if (import.meta.main) await tool.main();
