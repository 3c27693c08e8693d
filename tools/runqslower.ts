#!/usr/bin/env -S deno run -A
/**
 * runqslower: trace high run queue latency: one line for each time a task
 * waited longer than a threshold (default 10 ms) between becoming runnable
 * (woken, or preempted while runnable) and running on a CPU.
 *
 * Events: sched_wakeup, sched_wakeup_new and sched_switch as BTF-typed
 * tracepoints; the time a task became runnable is kept by TID. Output and
 * flags follow libbpf-tools runqslower.
 *
 *     # deno run -A tools/runqslower.ts -P 15000
 *     Tracing run queue latency higher than 15000 us
 *     TIME     COMM             TID           LAT(us) PREV COMM        PREV TID
 *     10:07:24 python3          51211           20113 python3          51209
 *     10:07:24 kworker/1:0      16346           41890 stress-ng        51230
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import { eventTool } from "../lib/cli/drivers/events.ts";
import { flag, integer, option, pidValue, positional, tidValue } from "../lib/cli/flags.ts";
import { UsageError } from "../lib/cli/usage.ts";
import { type EventsDef, reserve, submit } from "../lib/dsl/events.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import { type Probe, tpBtf } from "../lib/dsl/program.ts";
import { r1, r10, r2, r3, r7, r8, r9 } from "../lib/dsl/registers.ts";
import { char, defineSchema } from "../lib/dsl/schema.ts";
import { escapeText } from "../lib/format/escape.ts";
import { formatTimeOfDay } from "../lib/format/time.ts";

const TASK_RUNNING = 0;
const DEFAULT_MIN_US = 10000;

/** What the operator asked for. */
interface Options {
  /** Only waits longer than this, in microseconds (0: every wait). */
  minUs: number;
  pid?: number;
  tid?: number;
  /** -P: the task that ran before, too. */
  previous: boolean;
}

// --- BPF side ---------------------------------------------------------------

/** One wait, as sent to user space. */
const waitEvent = defineSchema("runq_event", {
  task: char(16),
  prev_task: char(16),
  delta_us: "u64",
  pid: "u32",
  prev_pid: "u32",
});

/** When each thread became runnable, by TID. */
const start = defineMap({
  name: "start",
  type: "hash",
  keySize: 4,
  valueSize: 8,
  maxEntries: 10240,
});

/** Records "runnable since now" for `task` (r7), unless filtered out. */
function enqueue(p: Probe, task: typeof r7, o: Options): void {
  const done = p.label(), key = p.stack(4);
  if (o.pid !== undefined) p.field(r1, task, "task_struct", "tgid").jumpIf(r1, "!=", o.pid, done);
  p.field(r1, task, "task_struct", "pid").jumpIf(r1, "==", 0, done);
  if (o.tid !== undefined) p.jumpIf(r1, "!=", o.tid, done);
  p.store("u32", r10, key, r1).startTimer(start, key);
  p.bind(done);
}

function wakeupProgram(event: "sched_wakeup" | "sched_wakeup_new", o: Options): Probe {
  const p = tpBtf(event, { name: `runqslow_${event.slice("sched_".length)}` });
  p.ctx(r7, "p");
  enqueue(p, r7, o);
  return p.ret(0);
}

function switchProgram(o: Options, ch: EventsDef): Probe {
  const p = tpBtf("sched_switch", { name: "runqslow_switch" });
  // A task preempted while still runnable goes back on the run queue now.
  p.ctx(r7, "prev");
  if (p.hasCtx("prev_state")) p.ctx(r1, "prev_state");
  else p.field(r1, r7, "task_struct", "__state");
  p.if(r1, "==", TASK_RUNNING, () => enqueue(p, r7, o));

  // The task switched in: how long did it wait?
  const key = p.stack(4), cleanup = p.label(), out = p.label();
  p.ctx(r7, "next").field(r1, r7, "task_struct", "pid").store("u32", r10, key, r1);
  p.elapsed(r8, start, key, out, cleanup);
  p.div(r8, 1000);
  if (o.minUs > 0) p.jumpIf(r8, "<=", o.minUs, cleanup);
  reserve(p, ch, r9, cleanup);
  waitEvent.store(p, r9, "delta_us", r8);
  p.load(r1, "u32", r10, key);
  waitEvent.store(p, r9, "pid", r1);
  const commAt = p.layouts.structField("task_struct", "comm").offset;
  const copyComm = (field: "task" | "prev_task", task: typeof r7) => {
    waitEvent.fieldPtr(p, r1, r9, field);
    p.mov(r2, 16).mov(r3, task).add(r3, commAt).call("probe_read_kernel_str");
  };
  copyComm("task", r7);
  p.ctx(r7, "prev").field(r1, r7, "task_struct", "pid");
  waitEvent.store(p, r9, "prev_pid", r1);
  copyComm("prev_task", r7);
  submit(p, ch, r9);
  p.bind(cleanup).delete(start, key);
  p.bind(out);
  return p.ret(0);
}

function buildPrograms(o: Options, ch: EventsDef) {
  return [
    wakeupProgram("sched_wakeup", o),
    wakeupProgram("sched_wakeup_new", o),
    switchProgram(o, ch),
  ].map((p) => p.build());
}

// --- user side --------------------------------------------------------------

function header(o: Options): string {
  return `Tracing run queue latency higher than ${o.minUs} us\n` +
    `${"TIME".padEnd(8)} ${"COMM".padEnd(16)} ${"TID".padEnd(6)} ${"LAT(us)".padStart(14)}` +
    (o.previous ? ` ${"PREV COMM".padEnd(16)} ${"PREV TID".padEnd(6)}` : "") + "\n";
}

function textLine(data: Uint8Array, o: Options): string {
  const e = waitEvent.decode(data);
  return `${formatTimeOfDay(new Date()).padEnd(8)} ${escapeText(e.task).padEnd(16)} ` +
    `${String(e.pid).padEnd(6)} ${String(e.delta_us).padStart(14)}` +
    (o.previous ? ` ${escapeText(e.prev_task).padEnd(16)} ${String(e.prev_pid).padEnd(6)}` : "") +
    "\n";
}

function jsonFields(data: Uint8Array, o: Options) {
  const e = waitEvent.decode(data);
  return {
    comm: e.task,
    tid: e.pid,
    latencyUs: Number(e.delta_us),
    ...(o.previous ? { prevComm: e.prev_task, prevTid: e.prev_pid } : {}),
  };
}

export const tool = eventTool({
  name: "runqslower",
  summary: "Trace high run queue latency.",
  examples: [
    ["runqslower", "trace latency higher than 10000 us (default)"],
    ["runqslower 1000", "trace latency higher than 1000 us"],
    ["runqslower -p 123", "trace pid 123"],
    ["runqslower -t 123", "trace tid 123 (use for threads only)"],
    ["runqslower -P", "also show previous task name and TID"],
  ],
  flags: {
    pid: option("PID", "process PID to trace", pidValue, { short: "p" }),
    tid: option("TID", "thread TID to trace", tidValue, { short: "t" }),
    previous: flag("also show previous task name and TID", "P"),
  },
  positionals: {
    minUs: positional(
      "min_us",
      "minimum run queue latency to trace, in us (default 10000)",
      integer(0, 2_147_483_647, "min_us"),
    ),
  },
  variants: [["-P", "1000"], ["-p", "1"], ["-t", "1", "0"]],
  options: (v): Options => {
    if (v.pid !== undefined && v.tid !== undefined) {
      throw new UsageError("-p and -t cannot be used together");
    }
    return { ...v, minUs: v.minUs ?? DEFAULT_MIN_US };
  },
}, {
  recordSize: waitEvent.size,
  build: buildPrograms,
  header,
  text: textLine,
  json: jsonFields,
});

if (import.meta.main) await tool.main();
