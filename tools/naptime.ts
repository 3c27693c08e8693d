#!/usr/bin/env -S deno run -A
/**
 * naptime: show voluntary sleep calls: who asked to sleep (and its parent),
 * and for how long, one line per call.
 *
 * Events: syscalls:sys_enter_nanosleep and sys_enter_clock_nanosleep (what
 * glibc's sleep(), usleep() and nanosleep() call today; naptime.bt traces
 * only nanosleep, so it misses them), the requested time read from the
 * caller's timespec. A sleep until an absolute CLOCK_MONOTONIC time
 * (TIMER_ABSTIME: Python's time.sleep) shows the time left until it; one
 * until an absolute time of another clock, and zero sleeps, are not shown.
 * Output follows the bpftrace book tool naptime.bt (-p is ours).
 *
 *     # deno run -A tools/naptime.ts
 *     Tracing sleeps. Hit Ctrl-C to end.
 *     TIME     PPID   PCOMM            PID    COMM             SECONDS
 *     10:29:04 1      systemd          1236   cron             60.000
 *     10:29:05 4120   bash             4135   sleep            0.250
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import { eventTool } from "../lib/cli/drivers/events.ts";
import { option, pidValue } from "../lib/cli/flags.ts";
import { type EventsDef, reserve, submit } from "../lib/dsl/events.ts";
import { type Probe, tracepoint } from "../lib/dsl/program.ts";
import { r0, r1, r10, r2, r3, r7, r8 } from "../lib/dsl/registers.ts";
import { char, defineSchema } from "../lib/dsl/schema.ts";
import { escapeText } from "../lib/format/escape.ts";
import { formatTimeOfDay } from "../lib/format/time.ts";

const TIMER_ABSTIME = 1;
const CLOCK_MONOTONIC = 1;
const NSEC_PER_SEC = 1_000_000_000;

/** What the operator asked for. */
interface Options {
  pid?: number;
}

// --- BPF side ---------------------------------------------------------------

/** One sleep call, as sent to user space. */
const napEvent = defineSchema("nap_event", {
  sec: "s64",
  nsec: "s64",
  ppid: "u32",
  pid: "u32",
  pcomm: char(16),
  comm: char(16),
});

function enterProgram(syscall: "nanosleep" | "clock_nanosleep", o: Options, ch: EventsDef): Probe {
  const p = tracepoint("syscalls", `sys_enter_${syscall}`, {
    name: syscall === "nanosleep" ? "naptime" : "naptime_clock",
  });
  const ts = p.stack(16), out = p.label();
  p.call("get_current_pid_tgid").rsh(r0, 32).mov(r8, r0);
  if (o.pid !== undefined) p.jumpIf(r8, "!=", o.pid, out);
  p.zeroStack(ts, 16).ctx(r3, "rqtp").stackPtr(r1, ts).mov(r2, 16).call("probe_read_user");
  p.jumpIf(r0, "!=", 0, out);
  if (syscall === "clock_nanosleep") {
    // Until an absolute CLOCK_MONOTONIC time (Python's time.sleep): what is left of it now.
    p.ctx(r1, "flags");
    p.if(r1, "&", TIMER_ABSTIME, () => {
      p.ctx(r1, "which_clock").jumpIf(r1, "!=", CLOCK_MONOTONIC, out);
      p.load(r1, "u64", r10, ts).alu("mul", r1, NSEC_PER_SEC);
      p.load(r2, "u64", r10, ts + 8).add(r1, r2).mov(r7, r1);
      p.ktime(r0).jumpIf(r7, "<=", r0, out).sub(r7, r0);
      p.mov(r1, r7).div(r1, NSEC_PER_SEC).store("u64", r10, ts, r1);
      p.mov(r1, r7).alu("mod", r1, NSEC_PER_SEC).store("u64", r10, ts + 8, r1);
    });
  }
  p.load(r1, "u64", r10, ts).load(r2, "u64", r10, ts + 8).alu("or", r1, r2).jumpIf(
    r1,
    "==",
    0,
    out,
  );
  reserve(p, ch, r7, out);
  p.load(r1, "u64", r10, ts);
  napEvent.store(p, r7, "sec", r1);
  p.load(r1, "u64", r10, ts + 8);
  napEvent.store(p, r7, "nsec", r1);
  napEvent.store(p, r7, "pid", r8);
  napEvent.currentComm(p, r7, "comm");
  p.call("get_current_task").mov(r8, r0).field(r1, r8, "task_struct", "real_parent->tgid");
  napEvent.store(p, r7, "ppid", r1);
  p.field(r3, r8, "task_struct", "real_parent");
  p.add(r3, p.layouts.structField("task_struct", "comm").offset);
  napEvent.fieldPtr(p, r1, r7, "pcomm");
  p.mov(r2, 16).call("probe_read_kernel_str");
  submit(p, ch, r7);
  p.bind(out);
  return p.ret(0);
}

// --- user side --------------------------------------------------------------

function header(): string {
  return "Tracing sleeps. Hit Ctrl-C to end.\n" +
    `${"TIME".padEnd(8)} ${"PPID".padEnd(6)} ${"PCOMM".padEnd(16)} ${"PID".padEnd(6)} ` +
    `${"COMM".padEnd(16)} SECONDS\n`;
}

/** "%d.%03d": whole seconds, then the milliseconds of tv_nsec (truncated), as naptime.bt. */
function seconds(sec: bigint, nsec: bigint): string {
  return `${sec}.${String(nsec / 1_000_000n).padStart(3, "0")}`;
}

function textLine(data: Uint8Array): string {
  const e = napEvent.decode(data);
  return `${formatTimeOfDay(new Date())} ${String(e.ppid).padEnd(6)} ` +
    `${escapeText(e.pcomm).padEnd(16)} ${String(e.pid).padEnd(6)} ` +
    `${escapeText(e.comm).padEnd(16)} ${seconds(e.sec, e.nsec)}\n`;
}

function jsonFields(data: Uint8Array) {
  const e = napEvent.decode(data);
  return {
    ppid: e.ppid,
    pcomm: e.pcomm,
    pid: e.pid,
    comm: e.comm,
    seconds: Number(e.sec) + Number(e.nsec) / 1e9,
  };
}

export const tool = eventTool({
  name: "naptime",
  summary: "Show voluntary sleep calls.",
  examples: [
    ["naptime", "show every sleep call, with its requested time"],
    ["naptime -p 185", "only the sleeps of PID 185"],
  ],
  flags: {
    pid: option("PID", "trace this PID only", pidValue, { short: "p" }),
  },
  variants: [["-p", "1"]],
  options: (v): Options => v,
}, {
  recordSize: napEvent.size,
  build: (o, ch) =>
    [enterProgram("nanosleep", o, ch), enterProgram("clock_nanosleep", o, ch)].map((p) =>
      p.build()
    ),
  header,
  text: textLine,
  json: jsonFields,
});

if (import.meta.main) await tool.main();
