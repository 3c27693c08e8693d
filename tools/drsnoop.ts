#!/usr/bin/env -S deno run -A
/**
 * drsnoop: trace direct reclaim: one line each time a task had to free
 * memory itself before its allocation could go on, with how long that took
 * and how many pages it reclaimed.
 *
 * Events: vmscan:mm_vmscan_direct_reclaim_begin / _end (global reclaim);
 * with -M also vmscan:mm_vmscan_memcg_reclaim_begin / _end, the reclaim a
 * task does when its memory cgroup reaches its limit (the usual case in
 * containers, where the machine has memory to spare). The begin time is kept
 * by TID. Output and flags follow libbpf-tools drsnoop (-M is ours).
 *
 *     # deno run -A tools/drsnoop.ts -M
 *     Tracing direct reclaim events... Hit Ctrl-C to end.
 *     TIME     COMM             TID     LAT(ms) PAGES
 *     10:31:02 python3          53511     0.102    32
 *     10:31:02 python3          53511     0.089    32
 *
 * -e (FREE(KB), the free memory when reclaim began) reads the kernel's
 * vm_zone_stat counters, whose address only kallsyms of a kernel built with
 * CONFIG_KALLSYMS_ALL gives; elsewhere -e says so and exits 1.
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import { Btf } from "../lib/btf/btf.ts";
import { durationFlag, eventTool } from "../lib/cli/drivers/events.ts";
import { flag, option, pidValue, tidValue } from "../lib/cli/flags.ts";
import { UsageError } from "../lib/cli/usage.ts";
import { type EventsDef, reserve, submit } from "../lib/dsl/events.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import { type Probe, tracepoint } from "../lib/dsl/program.ts";
import { r0, r1, r10, r2, r3, r7, r8, r9 } from "../lib/dsl/registers.ts";
import { char, defineSchema } from "../lib/dsl/schema.ts";
import { escapeText } from "../lib/format/escape.ts";
import { formatFixed, formatTimeOfDay } from "../lib/format/time.ts";
import { kernelSymbols } from "../lib/symbols/kallsyms.ts";

/** What the operator asked for. */
interface Options {
  pid?: number;
  tid?: number;
  duration?: number;
  /** -e: FREE(KB) too; the address of vm_zone_stat[NR_FREE_PAGES] (0 offline). */
  extended: boolean;
  freePagesAt?: bigint;
  /** -M: memory cgroup reclaim too. */
  memcg: boolean;
}

// --- BPF side ---------------------------------------------------------------

/** A reclaim in progress, by TID. */
const begin = defineSchema("reclaim_begin", { ts: "u64", free_pages: "u64" });
/** One reclaim, as sent to user space. */
const reclaimEvent = defineSchema("reclaim_event", {
  task: char(16),
  delta_ns: "u64",
  nr_reclaimed: "u64",
  free_pages: "u64",
  pid: "u32",
});

const start = defineMap({
  name: "start",
  type: "hash",
  keySize: 4,
  valueSize: begin.size,
  maxEntries: 8192,
});

function beginProgram(event: string, name: string, o: Options): Probe {
  const p = tracepoint("vmscan", event, { name });
  const key = p.stack(4), value = p.stack(begin.size);
  p.call("get_current_pid_tgid").mov(r7, r0);
  if (o.pid !== undefined) p.mov(r1, r7).rsh(r1, 32).returnIf(r1, "!=", o.pid);
  p.mov32(r7, r7); // the TID
  if (o.tid !== undefined) p.returnIf(r7, "!=", o.tid);
  p.store("u32", r10, key, r7).zeroStack(value, begin.size);
  if (o.extended) {
    p.stackPtr(r1, value + begin.offset("free_pages")).mov(r2, 8);
    p.mov64(r3, o.freePagesAt ?? 0n).call("probe_read_kernel");
  }
  p.ktime(r0).store("u64", r10, value + begin.offset("ts"), r0);
  p.update(start, key, value);
  return p.ret(0);
}

function endProgram(event: string, name: string, ch: EventsDef): Probe {
  const p = tracepoint("vmscan", event, { name });
  const key = p.stack(4), cleanup = p.label(), out = p.label();
  p.call("get_current_pid_tgid").mov32(r0, r0).store("u32", r10, key, r0);
  p.lookup(start, key).jumpIf(r0, "==", 0, out).mov(r8, r0);
  p.ktime(r9);
  begin.load(p, r1, r8, "ts");
  p.sub(r9, r1).jumpIf(r9, "s<", 0, cleanup);
  reserve(p, ch, r7, cleanup);
  reclaimEvent.store(p, r7, "delta_ns", r9);
  begin.load(p, r1, r8, "free_pages");
  reclaimEvent.store(p, r7, "free_pages", r1);
  p.ctx(r1, "nr_reclaimed");
  reclaimEvent.store(p, r7, "nr_reclaimed", r1);
  p.load(r1, "u32", r10, key);
  reclaimEvent.store(p, r7, "pid", r1);
  reclaimEvent.currentComm(p, r7, "task");
  submit(p, ch, r7);
  p.bind(cleanup).delete(start, key);
  p.bind(out);
  return p.ret(0);
}

function buildPrograms(o: Options, ch: EventsDef) {
  const programs = [
    beginProgram("mm_vmscan_direct_reclaim_begin", "drsnoop_begin", o),
    endProgram("mm_vmscan_direct_reclaim_end", "drsnoop_end", ch),
  ];
  if (o.memcg) {
    programs.push(
      beginProgram("mm_vmscan_memcg_reclaim_begin", "drsnoop_mbegin", o),
      endProgram("mm_vmscan_memcg_reclaim_end", "drsnoop_mend", ch),
    );
  }
  return programs.map((p) => p.build());
}

// --- user side --------------------------------------------------------------

/** -e: the address of vm_zone_stat[NR_FREE_PAGES], or a one-line error saying what is missing. */
function freePagesAddress(): bigint {
  const base = kernelSymbols().addressOf("vm_zone_stat");
  if (base === undefined) {
    throw new Error(
      "-e needs the address of vm_zone_stat, which /proc/kallsyms lists only on kernels " +
        "built with CONFIG_KALLSYMS_ALL",
    );
  }
  let index = 0;
  try {
    index = Number(Btf.vmlinux().enumValue("zone_stat_item", "NR_FREE_PAGES"));
  } catch { /* NR_FREE_PAGES has always been first */ }
  return base + BigInt(8 * index);
}

const PAGE_KB = 4;

function header(o: Options): string {
  return "Tracing direct reclaim events... Hit Ctrl-C to end.\n" +
    `${"TIME".padEnd(8)} ${"COMM".padEnd(16)} ${"TID".padEnd(6)} ${"LAT(ms)".padStart(8)} ` +
    `${"PAGES".padStart(5)}` + (o.extended ? ` ${"FREE(KB)".padStart(8)}` : "") + "\n";
}

function textLine(data: Uint8Array, o: Options): string {
  const e = reclaimEvent.decode(data);
  return `${formatTimeOfDay(new Date()).padEnd(8)} ${escapeText(e.task).padEnd(16)} ` +
    `${String(e.pid).padEnd(6)} ${formatFixed(Number(e.delta_ns) / 1e6, 3).padStart(8)} ` +
    `${String(e.nr_reclaimed).padStart(5)}` +
    (o.extended ? ` ${String(e.free_pages * BigInt(PAGE_KB)).padStart(8)}` : "") + "\n";
}

function jsonFields(data: Uint8Array, o: Options) {
  const e = reclaimEvent.decode(data);
  return {
    comm: e.task,
    tid: e.pid,
    latencyMs: Number(e.delta_ns) / 1e6,
    pages: Number(e.nr_reclaimed),
    ...(o.extended ? { freeKb: Number(e.free_pages) * PAGE_KB } : {}),
  };
}

export const tool = eventTool({
  name: "drsnoop",
  summary: "Trace direct reclaim latency.",
  examples: [
    ["drsnoop", "trace all direct reclaim events"],
    ["drsnoop -p 123", "trace pid 123"],
    ["drsnoop -t 123", "trace tid 123 (use for threads only)"],
    ["drsnoop -d 10", "trace for 10 seconds only"],
    ["drsnoop -e", "trace all direct reclaim events with extended fields"],
    ["drsnoop -M", "memory cgroup reclaim too (a cgroup at its limit)"],
  ],
  flags: {
    duration: durationFlag,
    extended: flag("extended fields output", "e"),
    pid: option("PID", "process PID to trace", pidValue, { short: "p" }),
    tid: option("TID", "thread TID to trace", tidValue, { short: "t" }),
    memcg: flag("memory cgroup reclaim too", "M", "memcg"),
  },
  variants: [["-M"], ["-p", "1"], ["-t", "1", "-M"], ["-e"]],
  options: (v): Options => {
    if (v.pid !== undefined && v.tid !== undefined) {
      throw new UsageError("-p and -t cannot be used together");
    }
    return v;
  },
}, {
  recordSize: reclaimEvent.size,
  build: (o, ch) => buildPrograms(o, ch),
  prepare: (o) => {
    // Resolved before loading (not for --dump): the programs read this address.
    if (o.extended) o.freePagesAt = freePagesAddress();
  },
  header,
  text: textLine,
  json: jsonFields,
  durationSeconds: (o) => o.duration,
});

if (import.meta.main) await tool.main();
