#!/usr/bin/env -S deno run -A
/**
 * workq: work queue function execution time, one histogram per kernel
 * function, as the BPF Performance Tools book's workq.bt: the time from a
 * kworker starting a work item's function to that function returning.
 *
 * Events: tracepoints workqueue:workqueue_execute_start (its `function`
 * field is the work function's address) and workqueue:workqueue_execute_end.
 * The start time and function are kept per thread, as in the book tool (a
 * kworker runs one work item at a time; the work struct itself may be freed
 * by the time its function returns). Function addresses become names in
 * user space, from /proc/kallsyms (lib/symbols/kallsyms.ts), like bpftrace's
 * ksym(); functions that share a name share a histogram, as in bpftrace.
 *
 *     # deno run -A tools/workq.ts
 *     Tracing workqueue request latencies. Ctrl-C to end.
 *     ^C
 *     @us[wb_workfn]:
 *     [16, 32)               2 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|
 *
 *     @us[loop_rootcg_workfn]:
 *     [8, 16)                3 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|
 *     [16, 32)               1 |@@@@@@@@@@@@@@@@@                                   |
 *     [32, 64)               2 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@                  |
 *
 * Histograms are bpftrace's hist() ([lo, hi) buckets of microseconds), keys
 * in ascending order of their counts, as bpftrace prints a map.
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import {
  intervalPositionals,
  intervalTool,
  jsonBuckets,
  timestampFlag,
} from "../lib/cli/drivers/interval.ts";
import { drainHistograms } from "../lib/cli/hist_maps.ts";
import type { Session } from "../lib/cli/session.ts";
import { defineHistMap } from "../lib/dsl/hist.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import { tracepoint } from "../lib/dsl/program.ts";
import { r0, r1, r10, r7, r8, r9 } from "../lib/dsl/registers.ts";
import { defineSchema } from "../lib/dsl/schema.ts";
import { formatBpftraceHistMap } from "../lib/format/bpftrace_hist.ts";
import { type Kallsyms, kernelSymbols } from "../lib/symbols/kallsyms.ts";
import { log2FromHistSlots } from "../lib/export/log2_totals.ts";

/**
 * bpftrace hist() buckets: 0 negative, 1 the value 0, 2 the value 1, i >= 3
 * [2^(i-2), 2^(i-1)). 40 buckets reach 2^38 us (three days); longer lands in the last.
 */
const SLOTS = 40;

// --- BPF side ---------------------------------------------------------------

/** Per thread (by TID): when its current work function started, and which function. */
const startValue = defineSchema("start_value", { ns: "u64", function: "u64" });
const start = defineMap({
  name: "start",
  type: "hash",
  keySize: 4,
  valueSize: startValue.size,
  maxEntries: 10240,
});
/** @us[function]: microsecond histograms keyed by the work function's address. */
const us = defineHistMap({ name: "us", slots: SLOTS, keySize: 8, maxEntries: 4096 });

/** Stores the current thread ID (u32) at r10+off. */
function storeTid(p: ReturnType<typeof tracepoint>, off: number): void {
  p.call("get_current_pid_tgid").store("u32", r10, off, r0);
}

/** workqueue_execute_start: @start[tid] = nsecs; @wqfunc[tid] = args->function. */
function startProgram() {
  const p = tracepoint("workqueue", "workqueue_execute_start", { name: "workq_start" });
  const key = p.stack(4), value = p.stack(startValue.size);
  storeTid(p, key);
  p.ktime(r0).store("u64", r10, value + startValue.offset("ns"), r0);
  p.ctx(r1, "function").store("u64", r10, value + startValue.offset("function"), r1);
  p.update(start, key, value);
  return p.ret(0);
}

/** workqueue_execute_end: @us[ksym(@wqfunc[tid])] = hist((nsecs - @start[tid]) / 1000). */
function endProgram() {
  const p = tracepoint("workqueue", "workqueue_execute_end", { name: "workq_end" });
  const key = p.stack(4), fn = p.stack(8);
  storeTid(p, key);
  p.lookup(start, key).returnIf(r0, "==", 0);
  startValue.load(p, r7, r0, "ns");
  startValue.load(p, r1, r0, "function");
  p.store("u64", r10, fn, r1);
  p.delete(start, key);
  p.ktime(r0).sub(r0, r7).div(r0, 1000).mov(r8, r0);
  // hist() bucket: 1 for 0 us, log2(us) + 2 otherwise
  p.log2(r9, r0, r1).add(r9, 2);
  p.if(r8, "==", 0, () => p.mov(r9, 1));
  p.clamp(r9, SLOTS - 1);
  p.histAdd(us, fn, r9, { zeroOff: p.stack(us.valueSize) });
  return p.ret(0);
}

// --- user side --------------------------------------------------------------

/** One work function's histogram (bpftrace hist() buckets), summed over same-named addresses. */
interface FunctionHistogram {
  function: string;
  counts: number[];
}

function readHistograms(session: Session, ksyms: Kallsyms): FunctionHistogram[] {
  const byName = new Map<string, number[]>();
  for (const h of drainHistograms(session.maps.get(us)!, us)) {
    const address = new DataView(h.key.buffer).getBigUint64(0, true);
    const name = ksyms.nameOf(address);
    const counts = byName.get(name) ?? new Array(SLOTS).fill(0);
    h.slots.forEach((c, i) => (counts[i] += c));
    byName.set(name, counts);
  }
  return [...byName].map(([name, counts]) => ({ function: name, counts }));
}

function formatText(hs: FunctionHistogram[]): string {
  if (hs.length === 0) return "";
  const encoder = new TextEncoder();
  return formatBpftraceHistMap(
    "@us",
    hs.map((h) => ({ key: h.function, keyBytes: encoder.encode(h.function), counts: h.counts })),
    { kind: "hist" },
  );
}

/** hist() bucket i as inclusive bounds in microseconds. */
function bucketBounds(i: number): { low: number; high: number } {
  if (i === 1) return { low: 0, high: 0 };
  if (i === 2) return { low: 1, high: 1 };
  return { low: 2 ** (i - 2), high: 2 ** (i - 1) - 1 };
}

function formatJson(hs: FunctionHistogram[]) {
  return {
    unit: "usecs",
    histograms: hs.sort((a, b) => (a.function < b.function ? -1 : 1)).map((h) => ({
      function: h.function,
      count: h.counts.reduce((a, b) => a + b, 0),
      buckets: jsonBuckets(h.counts, bucketBounds, 1), // bucket 0 (negative) never fills
    })),
  };
}

export const tool = intervalTool({
  name: "workq",
  summary: "Summarize work queue function run time, per kernel function.",
  examples: [
    ["workq", "histograms of work function run time until Ctrl-C"],
    ["workq 1 10", "print 1 second summaries, 10 times"],
    ["workq -T 5", "5 second summaries with timestamps"],
  ],
  flags: { timestamp: timestampFlag },
  positionals: intervalPositionals,
}, {
  banner: () => "Tracing workqueue request latencies. Ctrl-C to end.",
  build: () => [startProgram(), endProgram()].map((p) => p.build()),
  // Symbols first: if kptr_restrict hides them, say so before loading anything.
  prepare: () => kernelSymbols(),
  read: (session, _o, ksyms) => readHistograms(session, ksyms),
  text: formatText,
  // --prometheus: bpftk_workq_seconds{function}
  metrics: (hs) => ({
    histograms: {
      unit: "usecs",
      histograms: hs.map((h) => ({
        labels: { function: h.function },
        slots: log2FromHistSlots(h.counts),
      })),
    },
  }),
  json: formatJson,
});

if (import.meta.main) await tool.main();
