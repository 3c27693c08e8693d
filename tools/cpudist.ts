#!/usr/bin/env -S deno run -A
/**
 * cpudist: summarize on-CPU time per task as a histogram: how long a task
 * runs each time it is switched in, until it is switched out (sleeping,
 * blocking or preempted). With -O, the off-CPU time instead: from being
 * switched out to being switched in again.
 *
 * Events: sched_switch as a BTF-typed tracepoint; the time a task was
 * switched in (or out, -O) kept by TID. Output and flags follow
 * libbpf-tools cpudist.
 *
 *     # deno run -A tools/cpudist.ts -p 4242 -m
 *     Tracing on-CPU time... Hit Ctrl-C to end.
 *     ^C
 *          msecs               : count    distribution
 *              0 -> 1          : 3        |****                                    |
 *              2 -> 3          : 0        |                                        |
 *              4 -> 7          : 0        |                                        |
 *              8 -> 15         : 0        |                                        |
 *             16 -> 31         : 30       |****************************************|
 *
 * Differences from libbpf-tools: every on-CPU slice counts, as in bcc
 * cpudist (libbpf-tools counts only the slices that end with the task
 * preempted, still runnable, so a task that runs and then sleeps shows no
 * on-CPU time there); the idle task (PID 0, one per CPU under one PID) is not
 * counted.
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import {
  histogramTool,
  type IntervalOptions,
  intervalPositionals,
  timestampFlag,
} from "../lib/cli/drivers/interval.ts";
import { cgroupPath, cgroupV2Root, flag, option, pidValue } from "../lib/cli/flags.ts";
import { drainHistograms } from "../lib/cli/hist_maps.ts";
import type { Session } from "../lib/cli/session.ts";
import { UsageError } from "../lib/cli/usage.ts";
import { cgroupMap, skipUnlessInCgroup } from "../lib/dsl/cgroup.ts";
import { defineHistMap } from "../lib/dsl/hist.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import { type Probe, tpBtf } from "../lib/dsl/program.ts";
import { r1, r10, r2, r3, r7, r8, r9 } from "../lib/dsl/registers.ts";
import { decodeCString } from "../lib/format/escape.ts";
import { setCgroup } from "../lib/kernel/map.ts";

const MAX_SLOTS = 36;
const COMM_LEN = 16;

/** What the operator asked for. */
interface Options extends IntervalOptions {
  /** -O: off-CPU time instead of on-CPU time. */
  offcpu: boolean;
  milliseconds: boolean;
  /** Histogram key: one global histogram, or per process or thread. */
  per: "all" | "pid" | "tid";
  pid?: number;
  cgroup?: string;
}

// --- BPF side ---------------------------------------------------------------

/** When each thread was switched in (on-CPU) or out (-O), by TID. */
const start = defineMap({
  name: "start",
  type: "hash",
  keySize: 4,
  valueSize: 8,
  maxEntries: 10240,
});
/** The one global histogram: per-CPU u64 counters. */
const hist = defineHistMap({ name: "hist", slots: MAX_SLOTS, perCpu: true });
/** Histograms per process or thread: u32 slots[MAX_SLOTS] then comm[16]. */
const hists = defineHistMap({ name: "hists", slots: MAX_SLOTS, extraBytes: COMM_LEN });

/** Starts the clock of task `task` (r7), unless filtered out. */
function startClock(p: Probe, task: typeof r7, o: Options): void {
  const done = p.label(), key = p.stack(4);
  if (o.pid !== undefined) p.field(r1, task, "task_struct", "tgid").jumpIf(r1, "!=", o.pid, done);
  p.field(r1, task, "task_struct", "pid").jumpIf(r1, "==", 0, done);
  p.store("u32", r10, key, r1).startTimer(start, key);
  p.bind(done);
}

/** Stops the clock of task `task` (r7): the time since it started, into its histogram. */
function stopClock(p: Probe, task: typeof r7, o: Options): void {
  const key = p.stack(4), cleanup = p.label(), out = p.label();
  p.field(r1, task, "task_struct", "pid").jumpIf(r1, "==", 0, out);
  p.store("u32", r10, key, r1);
  p.elapsed(r8, start, key, out, cleanup); // filtered tasks never started a clock
  p.div(r8, o.milliseconds ? 1_000_000 : 1000);
  p.log2(r9, r8, r1).clamp(r9, MAX_SLOTS - 1);
  const hkey = p.stack(4);
  if (o.per === "all") p.store("u32", r10, hkey, 0);
  else {
    p.field(r1, task, "task_struct", o.per === "pid" ? "tgid" : "pid").store("u32", r10, hkey, r1);
  }
  p.histAdd(o.per === "all" ? hist : hists, hkey, r9, {
    zeroOff: o.per === "all" ? undefined : p.stack(hists.valueSize),
    valueReg: r8,
    fillExtra: (value) =>
      p.mov(r1, value).add(r1, 4 * MAX_SLOTS).mov(r2, COMM_LEN).mov(r3, task)
        .add(r3, p.layouts.structField("task_struct", "comm").offset)
        .call("probe_read_kernel_str"),
  });
  p.bind(cleanup).delete(start, key);
  p.bind(out);
}

function buildPrograms(o: Options) {
  const p = tpBtf("sched_switch", { name: "cpudist_switch" });
  const done = p.label();
  if (o.cgroup !== undefined) skipUnlessInCgroup(p, done);
  // prev leaves the CPU, next arrives: on-CPU time ends for prev and starts
  // for next; off-CPU time the other way round.
  if (o.offcpu) {
    p.ctx(r7, "prev");
    startClock(p, r7, o);
    p.ctx(r7, "next");
    stopClock(p, r7, o);
  } else {
    p.ctx(r7, "prev");
    stopClock(p, r7, o);
    p.ctx(r7, "next");
    startClock(p, r7, o);
  }
  p.bind(done);
  return [p.ret(0).build()];
}

// --- user side --------------------------------------------------------------

function readHistograms(session: Session, o: Options) {
  const def = o.per === "all" ? hist : hists;
  const unit = o.milliseconds ? "msecs" : "usecs";
  const read = drainHistograms(session.maps.get(def)!, def);
  if (o.per === "all") {
    // Nothing counted prints nothing, as the C tool's empty hash map.
    return { unit, histograms: read[0].slots.some((n) => n > 0) ? [{ slots: read[0].slots }] : [] };
  }
  const histograms = read.map((h) => {
    const id = new DataView(h.key.buffer).getUint32(0, true);
    const comm = decodeCString(h.extra);
    return { heading: `${o.per} = ${id} ${comm}`, labels: { [o.per]: id, comm }, slots: h.slots };
  });
  return { unit, histograms };
}

export const tool = histogramTool({
  name: "cpudist",
  summary: "Summarize on-CPU time per task as a histogram.",
  examples: [
    ["cpudist", "summarize on-CPU time as a histogram"],
    ["cpudist -O", "summarize off-CPU time as a histogram"],
    ["cpudist -c CG", "trace processes under cgroup v2 path CG"],
    ["cpudist 1 10", "print 1 second summaries, 10 times"],
    ["cpudist -mT 1", "1s summaries, milliseconds, and timestamps"],
    ["cpudist -P", "show each PID separately"],
    ["cpudist -p 185", "trace PID 185 only"],
  ],
  flags: {
    offcpu: flag("measure off-CPU time", "O"),
    timestamp: timestampFlag,
    milliseconds: flag("millisecond histogram", "m"),
    pids: flag("print a histogram per process ID", "P"),
    tids: flag("print a histogram per thread ID", "L"),
    pid: option("PID", "trace this PID only", pidValue, { short: "p" }),
    cgroup: option("CG", "trace processes in this cgroup v2 path only", cgroupPath, { short: "c" }),
  },
  positionals: intervalPositionals,
  variants: [["-O"], ["-P"], ["-L", "-m"], ["-O", "-p", "1"], ["-c", cgroupV2Root()]],
  options: (v): Options => {
    if (v.pids && v.tids) throw new UsageError("-P and -L cannot be used together");
    return { ...v, per: v.pids ? "pid" : v.tids ? "tid" : "all" };
  },
}, {
  banner: (o) => `Tracing ${o.offcpu ? "off" : "on"}-CPU time... Hit Ctrl-C to end.`,
  build: buildPrograms,
  initMaps: (o, maps) => o.cgroup !== undefined && setCgroup(maps.get(cgroupMap)!, o.cgroup),
  read: readHistograms,
});

if (import.meta.main) await tool.main();
