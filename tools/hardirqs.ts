#!/usr/bin/env -S deno run -A
/**
 * hardirqs: summarize hard interrupt handler time (or counts with -C, or
 * time distributions with -d) per interrupt handler name, as
 * /proc/interrupts names them ("virtio1-req.0").
 *
 * Events: irq_handler_entry and irq_handler_exit as BTF-typed tracepoints
 * (the handler's `struct irqaction` gives its name: the tracefs exit event
 * has none); the entry time is kept per CPU (hard interrupt handlers do not
 * nest). Output and flags follow libbpf-tools hardirqs.
 *
 *     # deno run -A tools/hardirqs.ts 1 1
 *     Tracing hard irq event time... Hit Ctrl-C to end.
 *
 *     HARDIRQ                    TOTAL_usecs
 *     virtio1-req.0                      512
 *     virtio3-tx                          22
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
import { cgroupPath, cgroupV2Root, flag, option } from "../lib/cli/flags.ts";
import { drainHistograms } from "../lib/cli/hist_maps.ts";
import type { Session } from "../lib/cli/session.ts";
import { UsageError } from "../lib/cli/usage.ts";
import { cgroupMap, skipUnlessInCgroup } from "../lib/dsl/cgroup.ts";
import { defineHistMap } from "../lib/dsl/hist.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import { type Probe, tpBtf } from "../lib/dsl/program.ts";
import { r0, r1, r10, r2, r3, r7, r8, r9 } from "../lib/dsl/registers.ts";
import { decodeCString } from "../lib/format/escape.ts";
import { formatLog2Hist } from "../lib/format/log2_hist.ts";
import { setCgroup } from "../lib/kernel/map.ts";

const MAX_SLOTS = 20;
const NAME_LEN = 32;

/** What the operator asked for. */
interface Options extends IntervalOptions {
  /** -C: counts instead of time. */
  counts: boolean;
  /** -d: a log2 histogram of handler times per interrupt. */
  distributed: boolean;
  nanoseconds: boolean;
  cgroup?: string;
}

// --- BPF side ---------------------------------------------------------------

/** When this CPU's handler started, ns (per-CPU: handlers do not nest). */
const start = defineMap({
  name: "start",
  type: "percpu_array",
  keySize: 4,
  valueSize: 8,
  maxEntries: 1,
});
/** Total time (or count, -C) by handler name. */
const totals = defineMap({
  name: "infos",
  type: "hash",
  keySize: NAME_LEN,
  valueSize: 8,
  maxEntries: 256,
});
/** -d: handler time histograms by handler name. */
const hists = defineHistMap({
  name: "hists",
  slots: MAX_SLOTS,
  keySize: NAME_LEN,
  maxEntries: 256,
});

/** The stack key at `key` = the handler's name (irqaction->name), NUL-padded. */
function nameKey(p: Probe, key: number): void {
  p.zeroStack(key, NAME_LEN);
  p.ctx(r7, "action").field(r3, r7, "irqaction", "name");
  p.stackPtr(r1, key).mov(r2, NAME_LEN).call("probe_read_kernel_str");
}

/** totals[key] += by (a register), creating the entry at 0. */
function addTotal(p: Probe, key: number, by: typeof r8): void {
  const zero = p.stack(8), done = p.label();
  p.lookupOrInit(totals, key, zero).jumpIf(r0, "==", 0, done).atomicAdd("u64", r0, 0, by);
  p.bind(done);
}

function entryProgram(o: Options): Probe {
  const p = tpBtf("irq_handler_entry", { name: "hardirq_entry" });
  const done = p.label();
  if (o.cgroup !== undefined) skipUnlessInCgroup(p, done);
  const key = p.stack(NAME_LEN);
  if (o.counts) {
    nameKey(p, key);
    p.mov(r8, 1);
    addTotal(p, key, r8);
  } else {
    const zero = p.stack(4), ts = p.stack(8);
    p.store("u32", r10, zero, 0).ktime(r0).store("u64", r10, ts, r0).update(start, zero, ts);
  }
  p.bind(done);
  return p.ret(0);
}

function exitProgram(o: Options): Probe {
  const p = tpBtf("irq_handler_exit", { name: "hardirq_exit" });
  const done = p.label(), zero = p.stack(4), key = p.stack(NAME_LEN);
  if (o.cgroup !== undefined) skipUnlessInCgroup(p, done);
  p.store("u32", r10, zero, 0).lookup(start, zero).jumpIf(r0, "==", 0, done);
  p.load(r8, "u64", r0, 0).jumpIf(r8, "==", 0, done); // entered before we attached
  p.store("u64", r0, 0, 0).ktime(r0).sub(r0, r8).mov(r8, r0).jumpIf(r8, "s<", 0, done);
  if (!o.nanoseconds) p.div(r8, 1000);
  nameKey(p, key);
  if (o.distributed) {
    p.log2(r9, r8, r1).clamp(r9, MAX_SLOTS - 1);
    p.histAdd(hists, key, r9, { zeroOff: p.stack(hists.valueSize) });
  } else addTotal(p, key, r8);
  p.bind(done);
  return p.ret(0);
}

function buildPrograms(o: Options) {
  return (o.counts ? [entryProgram(o)] : [entryProgram(o), exitProgram(o)]).map((p) => p.build());
}

// --- user side --------------------------------------------------------------

interface Report {
  totals: { name: string; value: number }[];
  hists: { name: string; slots: number[] }[];
}

function read(session: Session, o: Options): Report {
  if (o.distributed) {
    const hs = drainHistograms(session.maps.get(hists)!, hists);
    return { totals: [], hists: hs.map((h) => ({ name: decodeCString(h.key), slots: h.slots })) };
  }
  const map = session.maps.get(totals)!;
  const out = map.entries().map(([k, v]) => ({
    name: decodeCString(k),
    value: Number(new DataView(v.buffer).getBigUint64(0, true)),
  }));
  for (const [k] of map.entries()) map.delete(k);
  return { totals: out, hists: [] };
}

const unitOf = (o: Options) => (o.nanoseconds ? "nsecs" : "usecs");

function text(r: Report, o: Options): string {
  if (o.distributed) {
    return r.hists.map((h) => `hardirq = ${h.name}\n${formatLog2Hist(h.slots, unitOf(o))}`)
      .join("");
  }
  const head = o.counts
    ? `${"HARDIRQ".padEnd(26)} ${"TOTAL_count".padStart(11)}\n`
    : `${"HARDIRQ".padEnd(26)} ${"TOTAL_".padStart(6)}${unitOf(o).padStart(5)}\n`;
  return head + r.totals.map((t) => `${t.name.padEnd(26)} ${String(t.value).padStart(11)}\n`)
    .join("");
}

function json(r: Report, o: Options) {
  if (o.distributed) {
    return {
      unit: unitOf(o),
      histograms: r.hists.map((h) => ({ hardirq: h.name, buckets: log2Buckets(h.slots) })),
    };
  }
  return {
    unit: o.counts ? "count" : unitOf(o),
    hardirqs: r.totals.map((t) => ({ hardirq: t.name, total: t.value })),
  };
}

export const tool = intervalTool({
  name: "hardirqs",
  summary: "Summarize hard irq event time as histograms.",
  examples: [
    ["hardirqs", "sum hard irq event time"],
    ["hardirqs -d", "show hard irq event time as histograms"],
    ["hardirqs 1 10", "print 1 second summaries, 10 times"],
    ["hardirqs -c CG", "trace processes under cgroup v2 path CG"],
    ["hardirqs -NT 1", "1s summaries, nanoseconds, and timestamps"],
  ],
  flags: {
    counts: flag("show event counts instead of timing", "C", "count"),
    distributed: flag("show distributions as histograms", "d"),
    nanoseconds: flag("output in nanoseconds", "N"),
    timestamp: timestampFlag,
    cgroup: option("CG", "trace processes in this cgroup v2 path only", cgroupPath, { short: "c" }),
  },
  positionals: intervalPositionals,
  variants: [["-C"], ["-d"], ["-N", "-c", cgroupV2Root()]],
  options: (v): Options => {
    if (v.counts && v.distributed) throw new UsageError("-C and -d cannot be used together");
    return v;
  },
}, {
  banner: (o) => `Tracing hard irq event${o.counts ? "s" : " time"}... Hit Ctrl-C to end.`,
  build: buildPrograms,
  initMaps: (o, maps) => o.cgroup !== undefined && setCgroup(maps.get(cgroupMap)!, o.cgroup),
  read,
  text,
  json,
});

if (import.meta.main) await tool.main();
