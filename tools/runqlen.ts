#!/usr/bin/env -S deno run -A
/**
 * runqlen: summarize scheduler run queue length as a histogram: how many
 * tasks were waiting to run on a CPU (not counting the one running), sampled
 * at 99 Hz on every CPU. With -O, the run queue occupancy: the share of
 * samples in which some task was waiting.
 *
 * Events: a software cpu-clock perf event per CPU at the sampling frequency.
 * The length is the CPU's `rq->nr_running` (every scheduling class), reached
 * through BTF offsets from the current task: `task->se.cfs_rq->rq` (or the
 * run queue that embeds `se.cfs_rq`, on kernels without group scheduling),
 * minus the task running. No per-CPU `runqueues` ksym is needed. Output and
 * flags follow libbpf-tools runqlen.
 *
 *     # deno run -A tools/runqlen.ts -C 1 1
 *     Sampling run queue length... Hit Ctrl-C to end.
 *
 *     cpu = 0
 *          runqlen       : count     distribution
 *             0          : 91       |****************************************|
 *             1          : 8        |***                                     |
 *     cpu = 1
 *          runqlen       : count     distribution
 *             2          : 99       |****************************************|
 *
 * Difference from libbpf-tools: it reads the current task's
 * `se.cfs_rq->nr_running`, a field that no longer exists (Linux 6.14 renamed
 * it nr_queued: libbpf-tools and bpftrace's runqlen.bt fail to load here)
 * and that counts only the CFS entities of the current task's cgroup level;
 * `rq->nr_running` is the CPU's whole run queue.
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import {
  type IntervalOptions,
  intervalPositionals,
  intervalTool,
  jsonBuckets,
  timestampFlag,
} from "../lib/cli/drivers/interval.ts";
import { flag, integer, optionWithDefault } from "../lib/cli/flags.ts";
import type { Session } from "../lib/cli/session.ts";
import { kernelLayouts } from "../lib/dsl/layouts.ts";
import { defineHistMap } from "../lib/dsl/hist.ts";
import { Probe } from "../lib/dsl/program.ts";
import { r0, r1, r10, r2, r3, r7, r8 } from "../lib/dsl/registers.ts";
import { formatFixed } from "../lib/format/time.ts";
import { formatLinearHist } from "../lib/format/log2_hist.ts";

const MAX_SLOTS = 32;
/** struct bpf_perf_event_data: pt_regs (168 bytes), sample_period, addr. */
const PERF_EVENT_DATA_SIZE = 184;

/** What the operator asked for. */
interface Options extends IntervalOptions {
  /** -C: one histogram per CPU. */
  cpus: boolean;
  /** -O: run queue occupancy instead of the histogram. */
  occupancy: boolean;
  frequency: number;
}

// --- BPF side ---------------------------------------------------------------

/** Counts by run queue length, one copy per CPU (a per-CPU array: no atomics). */
const hist = defineHistMap({ name: "hists", slots: MAX_SLOTS, perCpu: true });

/** dst = the CPU's rq->nr_running, from the current task `task`. */
function runQueueLength(p: Probe, dst: typeof r8, task: typeof r7): void {
  try {
    p.layouts.structField("cfs_rq", "rq");
    p.field(dst, task, "task_struct", "se.cfs_rq->rq->nr_running");
  } catch {
    // No group scheduling: se.cfs_rq is the `cfs` embedded in the run queue.
    const cfs = p.layouts.structField("rq", "cfs").offset;
    const nr = p.layouts.structField("rq", "nr_running");
    p.field(r1, task, "task_struct", "se.cfs_rq").sub(r1, cfs).add(r1, nr.offset);
    const tmp = p.stack(8);
    p.store("u64", r10, tmp, 0).mov(r3, r1).stackPtr(r1, tmp).mov(r2, nr.size)
      .call("probe_read_kernel").load(dst, "u32", r10, tmp);
  }
}

function buildPrograms(o: Options) {
  const p = new Probe(
    "runqlen",
    "perf_event",
    { kind: "perf_event", frequency: o.frequency },
    { kind: "none" },
    kernelLayouts,
    PERF_EVENT_DATA_SIZE,
  );
  p.call("get_current_task").mov(r7, r0);
  runQueueLength(p, r8, r7);
  // Not counting the task running: 0 is idle or one task running, nothing waiting.
  p.if(r8, ">", 0, () => p.sub(r8, 1));
  p.clamp(r8, MAX_SLOTS - 1);
  const key = p.stack(4);
  p.store("u32", r10, key, 0).histAdd(hist, key, r8);
  return [p.ret(0).build()];
}

// --- user side --------------------------------------------------------------

/** Counts by run queue length, per CPU. */
type Report = number[][];

function readCounts(session: Session): Report {
  const map = session.maps.get(hist)!;
  const key = new Uint8Array(4);
  const value = map.lookup(key) ?? new Uint8Array(map.valueBytes);
  map.update(key, new Uint8Array(map.valueBytes));
  const view = new DataView(value.buffer);
  const stride = 8 * MAX_SLOTS;
  const perCpu: number[][] = [];
  for (let at = 0; at + stride <= value.length; at += stride) {
    perCpu.push(
      Array.from({ length: MAX_SLOTS }, (_, i) => Number(view.getBigUint64(at + 8 * i, true))),
    );
  }
  return perCpu;
}

/** The rows printed: every CPU with -C, else their sum. */
function rows(report: Report, o: Options): { cpu?: number; slots: number[] }[] {
  if (o.cpus) return report.map((slots, cpu) => ({ cpu, slots }));
  const sum = new Array(MAX_SLOTS).fill(0);
  for (const slots of report) slots.forEach((n, i) => (sum[i] += n));
  return [{ slots: sum }];
}

/** Percentage of samples with a task waiting. */
function occupancy(slots: number[]): number {
  const samples = slots.reduce((a, b) => a + b, 0);
  return (100 * (samples - slots[0])) / Math.max(1, samples);
}

function text(report: Report, o: Options): string {
  return rows(report, o).map(({ cpu, slots }) => {
    if (o.occupancy) {
      const pct = formatFixed(occupancy(slots), 2);
      return cpu === undefined
        ? `runqocc: ${pct}%\n`
        : `runqocc, CPU ${String(cpu).padEnd(3)} ${pct.padStart(6)}%\n`;
    }
    return (cpu === undefined ? "" : `cpu = ${cpu}\n`) +
      formatLinearHist(slots, 0, 1, "runqlen");
  }).join("");
}

function json(report: Report, o: Options) {
  const r = rows(report, o);
  if (o.occupancy) {
    return {
      occupancy: r.map(({ cpu, slots }) => ({
        ...(o.cpus ? { cpu } : {}),
        percent: occupancy(slots),
      })),
    };
  }
  return {
    unit: "runqlen",
    histograms: r.map(({ cpu, slots }) => ({
      ...(o.cpus ? { cpu } : {}),
      buckets: jsonBuckets(slots, (i) => ({ low: i, high: i })),
    })),
  };
}

export const tool = intervalTool({
  name: "runqlen",
  summary: "Summarize scheduler run queue length as a histogram.",
  examples: [
    ["runqlen", "summarize run queue length as a histogram"],
    ["runqlen 1 10", "print 1 second summaries, 10 times"],
    ["runqlen -T 1", "1s summaries and timestamps"],
    ["runqlen -O", "report run queue occupancy"],
    ["runqlen -C", "show each CPU separately"],
    ["runqlen -f 199", "sample at 199HZ"],
  ],
  flags: {
    cpus: flag("print output for each CPU separately", "C"),
    frequency: optionWithDefault(
      "FREQUENCY",
      "sample with a certain frequency (Hz, default 99)",
      integer(1, 100_000, "frequency"),
      99,
      { short: "f" },
    ),
    occupancy: flag("report run queue occupancy", "O", "runqocc"),
    timestamp: timestampFlag,
  },
  positionals: intervalPositionals,
  variants: [["-C", "-O", "-f", "199"]],
  options: (v): Options => v,
}, {
  banner: () => "Sampling run queue length... Hit Ctrl-C to end.",
  build: buildPrograms,
  read: readCounts,
  text,
  json,
});

if (import.meta.main) await tool.main();
