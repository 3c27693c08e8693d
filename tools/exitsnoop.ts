#!/usr/bin/env -S deno run -A
/**
 * exitsnoop: trace process termination, one line per exit with the parent
 * PID, the process's age and how it ended (exit code, or the signal that
 * killed it and whether it dumped core).
 *
 * Events: sched:sched_process_exit. The program reads the exiting task's
 * exit_code, start_time and real_parent->tgid and sends one record through
 * a ring buffer (a perf buffer on kernels before 5.8). By default only
 * whole-process exits (the thread whose TID is the PID); -T shows every
 * thread. Output and flags follow libbpf-tools exitsnoop.
 *
 *     # deno run -A tools/exitsnoop.ts
 *     PCOMM            PID     PPID    TID     AGE(s)  EXIT_CODE
 *     sleep            5891    5887    5891    1.00    0
 *     sh               5902    5887    5902    0.00    code 3
 *     sh               5905    5887    5905    0.00    signal 11 (Segmentation fault)
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import { eventTool } from "../lib/cli/drivers/events.ts";
import { cgroupPath, cgroupV2Root, flag, option, pidValue } from "../lib/cli/flags.ts";
import { cgroupMap, skipUnlessInCgroup } from "../lib/dsl/cgroup.ts";
import { type EventsDef, reserve, submit } from "../lib/dsl/events.ts";
import { tracepoint } from "../lib/dsl/program.ts";
import { r0, r1, r7, r8, r9 } from "../lib/dsl/registers.ts";
import { char, defineSchema } from "../lib/dsl/schema.ts";
import { escapeText } from "../lib/format/escape.ts";
import { signalDescription } from "../lib/format/signals.ts";
import { formatTimeOfDay } from "../lib/format/time.ts";
import { setCgroup } from "../lib/kernel/map.ts";

/** What the operator asked for. */
interface Options {
  timestamp: boolean;
  failed: boolean;
  pid?: number;
  threaded: boolean;
  cgroup?: string;
}

// --- BPF side ---------------------------------------------------------------

/** One exit, as sent to user space. */
const exitEvent = defineSchema("exit_event", {
  start_time: "u64",
  exit_time: "u64",
  pid: "u32",
  tid: "u32",
  ppid: "u32",
  /** task->exit_code: (code << 8) | signal, 0x80 set when it dumped core. */
  exit_code: "u32",
  comm: char(16),
});

function buildPrograms(o: Options, ch: EventsDef) {
  const p = tracepoint("sched", "sched_process_exit", { name: "exitsnoop" });
  const done = p.label();
  p.call("get_current_pid_tgid").mov(r1, r0).rsh(r1, 32); // r1: PID (tgid)
  if (!o.threaded) p.mov32(r0, r0).returnIf(r0, "!=", r1);
  if (o.pid !== undefined) p.returnIf(r1, "!=", o.pid);
  if (o.cgroup !== undefined) skipUnlessInCgroup(p, done);
  p.call("get_current_task").mov(r8, r0);
  p.field(r9, r8, "task_struct", "exit_code");
  if (o.failed) p.mov32(r9, r9).jumpIf(r9, "==", 0, done);
  reserve(p, ch, r7, done);
  exitEvent.store(p, r7, "exit_code", r9);
  p.call("get_current_pid_tgid");
  exitEvent.store(p, r7, "tid", r0);
  p.rsh(r0, 32);
  exitEvent.store(p, r7, "pid", r0);
  p.field(r1, r8, "task_struct", "real_parent->tgid");
  exitEvent.store(p, r7, "ppid", r1);
  p.field(r1, r8, "task_struct", "start_time");
  exitEvent.store(p, r7, "start_time", r1);
  p.ktime(r0);
  exitEvent.store(p, r7, "exit_time", r0);
  exitEvent.currentComm(p, r7, "comm");
  submit(p, ch, r7);
  p.bind(done);
  return [p.ret(0).build()];
}

// --- user side --------------------------------------------------------------

/** How the process ended, as libbpf-tools words it. */
function howItEnded(exitCode: number): string {
  const sig = exitCode & 0x7f, core = (exitCode & 0x80) !== 0, code = (exitCode >> 8) & 0xff;
  if ((exitCode & 0xff) === 0) return code === 0 ? "0" : `code ${code}`;
  return (sig ? `signal ${sig} (${signalDescription(sig)})` : "") + (core ? ", core dumped" : "");
}

function age(e: { start_time: bigint; exit_time: bigint }): number {
  return e.exit_time > e.start_time ? Number(e.exit_time - e.start_time) / 1e9 : 0;
}

function header(o: Options): string {
  return (o.timestamp ? "TIME(s)".padEnd(8) + " " : "") +
    `${"PCOMM".padEnd(16)} ${"PID".padEnd(7)} ${"PPID".padEnd(7)} ${"TID".padEnd(7)} ` +
    `${"AGE(s)".padEnd(7)} EXIT_CODE\n`;
}

function textLine(data: Uint8Array, o: Options): string {
  const e = exitEvent.decode(data);
  return (o.timestamp ? formatTimeOfDay(new Date()).padEnd(8) + " " : "") +
    `${escapeText(e.comm).padEnd(16)} ${String(e.pid).padEnd(7)} ${String(e.ppid).padEnd(7)} ` +
    `${String(e.tid).padEnd(7)} ${age(e).toFixed(2).padEnd(7)} ${howItEnded(e.exit_code)}\n`;
}

function jsonFields(data: Uint8Array) {
  const e = exitEvent.decode(data);
  const sig = e.exit_code & 0x7f;
  return {
    comm: e.comm,
    pid: e.pid,
    ppid: e.ppid,
    tid: e.tid,
    age: Number(age(e).toFixed(6)),
    exitCode: (e.exit_code >> 8) & 0xff,
    signal: sig,
    ...(sig ? { signalName: signalDescription(sig) } : {}),
    coreDumped: (e.exit_code & 0x80) !== 0,
  };
}

export const tool = eventTool({
  name: "exitsnoop",
  summary: "Trace process termination.",
  examples: [
    ["exitsnoop", "trace process exit events"],
    ["exitsnoop -t", "include timestamps"],
    ["exitsnoop -x", "trace error exits only"],
    ["exitsnoop -p 1216", "only trace PID 1216"],
    ["exitsnoop -T", "trace by thread"],
    ["exitsnoop -c CG", "trace process under cgroupsPath CG"],
  ],
  flags: {
    timestamp: flag("include timestamp on output", "t"),
    failed: flag("trace error exits only", "x"),
    pid: option("PID", "process ID to trace", pidValue, { short: "p" }),
    threaded: flag("trace by thread", "T"),
    cgroup: option("CG", "trace process in cgroup path", cgroupPath, { short: "c" }),
  },
  variants: [["-x"], ["-p", "1"], ["-T"], ["-c", cgroupV2Root()], ["-x", "-T", "-p", "1"]],
}, {
  recordSize: exitEvent.size,
  build: buildPrograms,
  initMaps: (o, maps) => o.cgroup !== undefined && setCgroup(maps.get(cgroupMap)!, o.cgroup),
  header,
  text: textLine,
  json: jsonFields,
});

if (import.meta.main) await tool.main();
