#!/usr/bin/env -S deno run -A
/**
 * funclatency: time a function, from entry to return, and show the times
 * as a log2 histogram.
 *
 * Events: a uprobe and a uretprobe on a user-space function (`LIB:FUNC`,
 * `/path/to/bin:FUNC`, `:FUNC` in the executable of -p PID); the entry
 * keeps the time per thread, the return counts the difference in a per-CPU
 * histogram. A kernel function (`FUNC`) takes a kprobe and a kretprobe,
 * which this tool builds but cannot attach where the kernel has no kprobes
 * (it says so in one line). Flags and output follow libbpf-tools
 * funclatency, except that each -i interval shows only its own calls (bcc's
 * behaviour; libbpf-tools keeps adding up).
 *
 *     # deno run -A tools/funclatency.ts -m /tmp/sl:sleeper_function
 *     Tracing /tmp/sl:sleeper_function.  Hit Ctrl-C to exit
 *
 *          msec                : count    distribution
 *              0 -> 1          : 0        |                                        |
 *              2 -> 3          : 0        |                                        |
 *              4 -> 7          : 0        |                                        |
 *              8 -> 15         : 0        |                                        |
 *             16 -> 31         : 5        |****************************************|
 *     Exiting trace of /tmp/sl:sleeper_function
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import { histogramTool, type IntervalOptions } from "../lib/cli/drivers/interval.ts";
import {
  cgroupPath,
  cgroupV2Root,
  flag,
  integer,
  option,
  pidValue,
  positional,
} from "../lib/cli/flags.ts";
import { drainHistograms } from "../lib/cli/hist_maps.ts";
import { parseTarget, type ProbeTarget } from "../lib/cli/probe_target.ts";
import type { Session } from "../lib/cli/session.ts";
import { UsageError } from "../lib/cli/usage.ts";
import { defineHistMap } from "../lib/dsl/hist.ts";
import { kprobe } from "../lib/dsl/kprobe.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import type { Probe } from "../lib/dsl/program.ts";
import { uprobe } from "../lib/dsl/pt_regs.ts";
import { r0, r1, r10, r2, r8, r9 } from "../lib/dsl/registers.ts";
import { setCgroup } from "../lib/kernel/map.ts";

/** Log2 slots: nanoseconds up to 2^63. */
const MAX_SLOTS = 64;
const UNITS = {
  nsec: 1,
  usec: 1000,
  msec: 1_000_000,
} as const;

/** What the operator asked for. */
interface Options extends IntervalOptions {
  target: Extract<ProbeTarget, { kind: "kprobe" | "uprobe" }>;
  unit: keyof typeof UNITS;
  pid?: number;
  cgroup?: string;
}

// --- BPF side ---------------------------------------------------------------

/** Entry time by thread. */
const starts = defineMap({
  name: "starts",
  type: "hash",
  keySize: 4,
  valueSize: 8,
  maxEntries: 10240,
});
const hist = defineHistMap({ name: "hist", slots: MAX_SLOTS, perCpu: true });
const cgroupMap = defineMap({
  name: "cgroup_map",
  type: "cgroup_array",
  keySize: 4,
  valueSize: 4,
  maxEntries: 1,
});

/** Returns unless the caller is the -p process and under the -c cgroup. */
function filters(p: Probe, o: Options): void {
  if (o.pid !== undefined) p.filterCurrentTgid(o.pid);
  if (o.cgroup !== undefined) {
    p.loadMap(r1, cgroupMap).mov(r2, 0).call("current_task_under_cgroup").returnIf(r0, "==", 0);
  }
}

function entryProgram(p: Probe, o: Options): Probe {
  const key = p.stack(4);
  filters(p, o);
  p.call("get_current_pid_tgid").store("u32", r10, key, r0);
  p.startTimer(starts, key);
  return p.ret(0);
}

function returnProgram(p: Probe, o: Options): Probe {
  const key = p.stack(4), hkey = p.stack(4), done = p.label();
  p.call("get_current_pid_tgid").store("u32", r10, key, r0);
  p.elapsed(r8, starts, key, done);
  if (UNITS[o.unit] > 1) p.div(r8, UNITS[o.unit]);
  p.log2(r9, r8, r1).clamp(r9, MAX_SLOTS - 1);
  p.store("u32", r10, hkey, 0).histAdd(hist, hkey, r9);
  p.bind(done).delete(starts, key);
  return p.ret(0);
}

function buildPrograms(o: Options) {
  const t = o.target;
  const probe = (retprobe: boolean) => {
    const name = retprobe ? "funclat_return" : "funclat_entry";
    if (t.kind === "kprobe") return kprobe(t.func, { retprobe, name });
    const pid = o.pid === undefined ? {} : { pid: o.pid };
    return uprobe(t.binary, t.func, { retprobe, name, ...pid });
  };
  return [entryProgram(probe(false), o), returnProgram(probe(true), o)].map((p) => p.build());
}

// --- user side --------------------------------------------------------------

function readHistogram(session: Session, o: Options) {
  const [h] = drainHistograms(session.maps.get(hist)!, hist);
  return { unit: o.unit, histograms: [{ slots: h.slots }] };
}

export const tool = histogramTool({
  name: "funclatency",
  summary: "Time functions and print latency as a histogram.",
  examples: [
    ["funclatency c:malloc", "time malloc() in every process"],
    ["funclatency -m /tmp/a.out:work", "time work() in /tmp/a.out, in ms"],
    ["funclatency -u -p 181 c:read", "time read() of libc in process 181"],
    ["funclatency -p 181 :foo", "time foo() in process 181's executable"],
    ["funclatency -i 2 -d 10 c:write", "output every 2 seconds, for 10s"],
    ["funclatency -mTi 5 c:fsync", "output every 5 seconds, with timestamps"],
    ["funclatency vfs_read", "a kernel function (needs kprobes)"],
  ],
  flags: {
    milliseconds: flag("Output in milliseconds", "m"),
    microseconds: flag("Output in microseconds", "u"),
    pid: option("PID", "Process ID to trace", pidValue, { short: "p" }),
    cgroup: option("CG", "Trace process in cgroup path", cgroupPath, { short: "c" }),
    duration: option("SECS", "Duration to trace", integer(1, 99_999_999, "duration"), {
      short: "d",
    }),
    interval: option("SECS", "Summary interval in seconds", integer(1, 99_999_999, "interval"), {
      short: "i",
    }),
    timestamp: flag("Print timestamp", "T"),
  },
  positionals: {
    func: positional("FUNCTION", "[LIB]:FUNC (uprobe) or FUNC (kprobe)", (text) => text),
  },
  needsArguments: true,
  variants: [
    ["c:malloc"],
    ["-u", "-p", "1", "c:malloc"],
    ["-m", "-c", cgroupV2Root(), "c:malloc"],
  ],
  options: (v): Options => {
    if (v.func === undefined) throw new UsageError("needs a FUNCTION to trace");
    if (v.milliseconds && v.microseconds) throw new UsageError("-m and -u cannot be used together");
    const target = parseTarget(v.func, {}, v.pid);
    if (target.kind !== "kprobe" && target.kind !== "uprobe") {
      throw new UsageError(`'${v.func}': funclatency times functions only`);
    }
    const interval = v.interval ?? v.duration;
    const count = v.duration === undefined ? undefined : Math.ceil(v.duration / interval!);
    return {
      target,
      unit: v.milliseconds ? "msec" : v.microseconds ? "usec" : "nsec",
      timestamp: v.timestamp,
      ...(v.pid === undefined ? {} : { pid: v.pid }),
      ...(v.cgroup === undefined ? {} : { cgroup: v.cgroup }),
      ...(interval === undefined ? {} : { interval }),
      ...(count === undefined ? {} : { count }),
    };
  },
}, {
  banner: (o) => `Tracing ${o.target.text}.  Hit Ctrl-C to exit`,
  footer: (o) => `Exiting trace of ${o.target.text}`,
  build: buildPrograms,
  initMaps: (o, maps) => o.cgroup !== undefined && setCgroup(maps.get(cgroupMap)!, o.cgroup),
  read: readHistogram,
});

if (import.meta.main) await tool.main();
