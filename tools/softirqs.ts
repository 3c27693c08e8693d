#!/usr/bin/env -S deno run -A
/**
 * softirqs: summarize soft interrupt time per softirq vector (timer, net_rx,
 * block, sched, rcu...), as totals or, with -d, as log2 histograms of each
 * run's time.
 *
 * Events: softirq_entry and softirq_exit as BTF-typed tracepoints, not the
 * tracefs ones: softirqs often run on interrupt exit inside another tracing
 * program, and the kernel skips tracefs-tracepoint programs on a CPU where
 * one already runs (bpf_prog_active), so runs would go uncounted. The entry
 * time is kept per CPU (softirqs do not nest on a CPU), totals and
 * histograms in per-CPU arrays indexed by vector (no atomics). Output and
 * flags follow libbpf-tools softirqs.
 *
 *     # deno run -A tools/softirqs.ts 1 1
 *     Tracing soft irq event time... Hit Ctrl-C to end.
 *
 *     SOFTIRQ          TOTAL_usecs
 *     timer                    139
 *     sched                    412
 *     rcu                      360
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import {
  type IntervalOptions,
  intervalPositionals,
  intervalTool,
  log2Buckets,
  timestampFlag,
} from "../lib/cli/drivers/interval.ts";
import { flag } from "../lib/cli/flags.ts";
import type { Session } from "../lib/cli/session.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import { type Probe, tpBtf } from "../lib/dsl/program.ts";
import { r0, r1, r10, r7, r8, r9 } from "../lib/dsl/registers.ts";
import { formatLog2Hist } from "../lib/format/log2_hist.ts";

const MAX_SLOTS = 20;
/** NR_SOFTIRQS: the vectors, in the kernel's order (include/linux/interrupt.h). */
const VECTORS = [
  "hi",
  "timer",
  "net_tx",
  "net_rx",
  "block",
  "irq_poll",
  "tasklet",
  "sched",
  "hrtimer",
  "rcu",
];

/** What the operator asked for. */
interface Options extends IntervalOptions {
  /** -d: a log2 histogram of run times per vector. */
  distributed: boolean;
  nanoseconds: boolean;
}

// --- BPF side ---------------------------------------------------------------

/** When this CPU's softirq started, ns. */
const start = defineMap({
  name: "start",
  type: "percpu_array",
  keySize: 4,
  valueSize: 8,
  maxEntries: 1,
});
/** Total time by vector. */
const counts = defineMap({
  name: "counts",
  type: "percpu_array",
  keySize: 4,
  valueSize: 8,
  maxEntries: VECTORS.length,
});
/** -d: histogram by vector, u64 slots. */
const hists = defineMap({
  name: "hists",
  type: "percpu_array",
  keySize: 4,
  valueSize: 8 * MAX_SLOTS,
  maxEntries: VECTORS.length,
});

function entryProgram(): Probe {
  const p = tpBtf("softirq_entry", { name: "softirq_entry" });
  const zero = p.stack(4), ts = p.stack(8);
  p.store("u32", r10, zero, 0).ktime(r0).store("u64", r10, ts, r0).update(start, zero, ts);
  return p.ret(0);
}

function exitProgram(o: Options): Probe {
  const p = tpBtf("softirq_exit", { name: "softirq_exit" });
  const done = p.label(), zero = p.stack(4), key = p.stack(4);
  p.ctx(r7, "vec_nr").jumpIf(r7, ">=", VECTORS.length, done).store("u32", r10, key, r7);
  p.store("u32", r10, zero, 0).lookup(start, zero).jumpIf(r0, "==", 0, done);
  p.load(r8, "u64", r0, 0).jumpIf(r8, "==", 0, done); // entered before we attached
  p.store("u64", r0, 0, 0).ktime(r0).sub(r0, r8).mov(r8, r0).jumpIf(r8, "s<", 0, done);
  if (!o.nanoseconds) p.div(r8, 1000);
  if (o.distributed) {
    p.log2(r9, r8, r1).clamp(r9, MAX_SLOTS - 1);
    p.lookup(hists, key).jumpIf(r0, "==", 0, done);
    p.lsh(r9, 3).add(r0, r9).load(r1, "u64", r0, 0).add(r1, 1).store("u64", r0, 0, r1);
  } else p.counterAdd(counts, key, r8);
  p.bind(done);
  return p.ret(0);
}

function buildPrograms(o: Options) {
  return [entryProgram(), exitProgram(o)].map((p) => p.build());
}

// --- user side --------------------------------------------------------------

/** Per vector: the total (or the histogram's slots, -d), summed over CPUs. */
type Report = { vector: string; total: number; slots: number[] }[];

/** Vector names as /proc/softirqs lists them (lowercased), else the 6.x list. */
function vectorNames(): string[] {
  try {
    const names = Deno.readTextFileSync("/proc/softirqs").split("\n").slice(1)
      .map((l) => l.trim().split(":")[0].toLowerCase()).filter((n) => n !== "");
    if (names.length === VECTORS.length) return names;
  } catch { /* no procfs */ }
  return VECTORS;
}

function read(session: Session, o: Options, names: string[]): Report {
  const map = session.maps.get(o.distributed ? hists : counts)!;
  const slotsPer = o.distributed ? MAX_SLOTS : 1;
  const stride = 8 * slotsPer;
  return names.map((vector, vec) => {
    const key = new Uint8Array(new Uint32Array([vec]).buffer);
    const value = map.lookup(key);
    map.update(key, new Uint8Array(map.valueBytes));
    const slots = new Array(slotsPer).fill(0);
    if (value) {
      const view = new DataView(value.buffer);
      for (let at = 0; at + stride <= value.length; at += stride) {
        for (let i = 0; i < slotsPer; i++) slots[i] += Number(view.getBigUint64(at + 8 * i, true));
      }
    }
    return { vector, total: o.distributed ? 0 : slots[0], slots: o.distributed ? slots : [] };
  });
}

const unitOf = (o: Options) => (o.nanoseconds ? "nsecs" : "usecs");

function text(r: Report, o: Options): string {
  if (o.distributed) {
    return r.filter((v) => v.slots.some((n) => n > 0))
      .map((v) => `softirq = ${v.vector}\n${formatLog2Hist(v.slots, unitOf(o))}\n`).join("");
  }
  return `${"SOFTIRQ".padEnd(16)} ${"TOTAL_".padStart(6)}${unitOf(o).padStart(5)}\n` +
    r.filter((v) => v.total > 0)
      .map((v) => `${v.vector.padEnd(16)} ${String(v.total).padStart(11)}\n`).join("");
}

function json(r: Report, o: Options) {
  if (o.distributed) {
    return {
      unit: unitOf(o),
      histograms: r.filter((v) => v.slots.some((n) => n > 0))
        .map((v) => ({ softirq: v.vector, buckets: log2Buckets(v.slots) })),
    };
  }
  return {
    unit: unitOf(o),
    softirqs: r.filter((v) => v.total > 0).map((v) => ({ softirq: v.vector, total: v.total })),
  };
}

export const tool = intervalTool({
  name: "softirqs",
  summary: "Summarize soft irq event time as histograms.",
  examples: [
    ["softirqs", "sum soft irq event time"],
    ["softirqs -d", "show soft irq event time as histograms"],
    ["softirqs 1 10", "print 1 second summaries, 10 times"],
    ["softirqs -NT 1", "1s summaries, nanoseconds, and timestamps"],
  ],
  flags: {
    distributed: flag("show distributions as histograms", "d"),
    nanoseconds: flag("output in nanoseconds", "N"),
    timestamp: timestampFlag,
  },
  positionals: intervalPositionals,
  variants: [["-d"], ["-N"]],
  options: (v): Options => v,
}, {
  banner: () => "Tracing soft irq event time... Hit Ctrl-C to end.",
  build: buildPrograms,
  prepare: vectorNames,
  read,
  text,
  json,
});

if (import.meta.main) await tool.main();
