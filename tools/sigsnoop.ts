#!/usr/bin/env -S deno run -A
/**
 * sigsnoop: trace signals, one line per signal generated system-wide (or,
 * with -k, per kill(), tkill() or tgkill() call): the sender, the signal, the
 * target thread and the result.
 *
 * Events: signal:signal_generate (RESULT is its errno); with -k (and as
 * killsnoop) syscalls:sys_enter/sys_exit_kill, _tkill and _tgkill, where the
 * enter side saves the call per thread and the exit side adds the return
 * value. Records go through a ring buffer (a perf buffer on kernels before
 * 5.8). Output and flags follow libbpf-tools sigsnoop (whose killsnoop name
 * means -k).
 *
 *     # deno run -A tools/sigsnoop.ts
 *     TIME     PID     COMM             SIG       TPID    RESULT
 *     10:10:44 24630   bash             10        24719   0
 *     10:10:44 24642   sleep            17        24630   0
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import { eventTool } from "../lib/cli/drivers/events.ts";
import { flag, option, pidValue } from "../lib/cli/flags.ts";
import { syscallTracepointExists } from "../lib/cli/syscalls.ts";
import type { Tool } from "../lib/cli/tool.ts";
import { UsageError } from "../lib/cli/usage.ts";
import { type EventsDef, output, reserve, submit } from "../lib/dsl/events.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import { type Probe, tracepoint } from "../lib/dsl/program.ts";
import { r0, r1, r10, r7, r8, r9 } from "../lib/dsl/registers.ts";
import { char, defineSchema } from "../lib/dsl/schema.ts";
import { escapeText } from "../lib/format/escape.ts";
import { signalName, signalNumber } from "../lib/format/signals.ts";
import { formatTimeOfDay } from "../lib/format/time.ts";

/** What the operator asked for. */
interface Options {
  failed: boolean;
  kill: boolean;
  name: boolean;
  pid?: number;
  signal?: number;
}

/** -s: a signal number or name (9, KILL, SIGUSR1, RTMIN+2). */
function signalArg(text: string): number {
  const sig = signalNumber(text);
  if (sig === undefined) throw new UsageError(`invalid signal '${text}'`);
  return sig;
}

// --- BPF side ---------------------------------------------------------------

/** One signal, as sent to user space (and, for -k, kept from enter to exit). */
const signalEvent = defineSchema("signal_event", {
  pid: "u32",
  tpid: "s32",
  sig: "s32",
  ret: "s32",
  comm: char(16),
});

/** The kill call in flight, by thread. */
const calls = defineMap({
  name: "calls",
  type: "hash",
  keySize: 4,
  valueSize: signalEvent.size,
  maxEntries: 10240,
});

/** sys_enter_kill/tkill/tgkill: filter, then save sender, target and signal by TID. */
function enterProgram(syscall: string, o: Options): Probe {
  const p = tracepoint("syscalls", `sys_enter_${syscall}`, { name: `${syscall}_entry` });
  const key = p.stack(4), ev = p.stack(signalEvent.size);
  p.ctx(r7, "sig").mov32(r7, r7);
  if (o.signal !== undefined) p.returnIf(r7, "!=", o.signal);
  p.call("get_current_pid_tgid").mov(r8, r0).rsh(r8, 32);
  if (o.pid !== undefined) p.returnIf(r8, "!=", o.pid);
  p.store("u32", r10, key, r0);
  p.zeroStack(ev, signalEvent.size).stackPtr(r9, ev);
  signalEvent.store(p, r9, "pid", r8);
  signalEvent.store(p, r9, "sig", r7);
  p.ctx(r1, "pid"); // tgkill: the thread, as for tkill
  signalEvent.store(p, r9, "tpid", r1);
  signalEvent.currentComm(p, r9, "comm");
  p.update(calls, key, ev);
  return p.ret(0);
}

/** sys_exit_*: add the return value and send the saved call. */
function exitProgram(syscall: string, o: Options, ch: EventsDef): Probe {
  const p = tracepoint("syscalls", `sys_exit_${syscall}`, { name: `${syscall}_exit` });
  const key = p.stack(4), cleanup = p.label();
  p.call("get_current_pid_tgid").store("u32", r10, key, r0);
  p.lookup(calls, key).returnIf(r0, "==", 0).mov(r9, r0);
  p.ctx(r8, "ret");
  if (o.failed) p.jumpIf(r8, "s>=", 0, cleanup);
  signalEvent.store(p, r9, "ret", r8);
  output(p, ch, r9, signalEvent.size);
  p.bind(cleanup).delete(calls, key);
  return p.ret(0);
}

/** signal:signal_generate: every signal the kernel generates, with its errno. */
function generateProgram(o: Options, ch: EventsDef): Probe {
  const p = tracepoint("signal", "signal_generate", { name: "sig_trace" });
  const done = p.label();
  p.ctx(r8, "errno");
  if (o.failed) p.jumpIf(r8, "==", 0, done);
  p.ctx(r9, "sig");
  if (o.signal !== undefined) p.jumpIf(r9, "!=", o.signal, done);
  if (o.pid !== undefined) p.call("get_current_pid_tgid").rsh(r0, 32).jumpIf(r0, "!=", o.pid, done);
  reserve(p, ch, r7, done);
  p.call("get_current_pid_tgid").rsh(r0, 32);
  signalEvent.store(p, r7, "pid", r0);
  signalEvent.store(p, r7, "sig", r9);
  signalEvent.store(p, r7, "ret", r8);
  p.ctx(r1, "pid");
  signalEvent.store(p, r7, "tpid", r1);
  signalEvent.currentComm(p, r7, "comm");
  submit(p, ch, r7);
  p.bind(done);
  return p.ret(0);
}

function buildPrograms(o: Options, ch: EventsDef) {
  if (!o.kill) return [generateProgram(o, ch).build()];
  const programs: Probe[] = [];
  for (const syscall of ["kill", "tkill", "tgkill"]) {
    if (!syscallTracepointExists(`sys_enter_${syscall}`)) continue;
    programs.push(enterProgram(syscall, o), exitProgram(syscall, o, ch));
  }
  return programs.map((p) => p.build());
}

// --- user side --------------------------------------------------------------

const HEADER = `${"TIME".padEnd(8)} ${"PID".padEnd(7)} ${"COMM".padEnd(16)} ${"SIG".padEnd(9)} ` +
  `${"TPID".padEnd(7)} ${"RESULT".padEnd(6)}\n`;

/** The SIG column: the number, or with -n libbpf-tools' name ("N/A" for 0). */
function sigColumn(sig: number, o: Options): string {
  if (!o.name) return String(sig);
  if (sig === 0) return "N/A";
  return sig <= 31 ? signalName(sig)! : String(sig);
}

function textLine(data: Uint8Array, o: Options): string {
  const e = signalEvent.decode(data);
  return `${formatTimeOfDay(new Date()).padEnd(8)} ${String(e.pid).padEnd(7)} ` +
    `${escapeText(e.comm).padEnd(16)} ${sigColumn(e.sig, o).padEnd(9)} ` +
    `${String(e.tpid).padEnd(7)} ${String(e.ret).padEnd(6)}\n`;
}

function jsonFields(data: Uint8Array) {
  const e = signalEvent.decode(data);
  return {
    pid: e.pid,
    comm: e.comm,
    sig: e.sig,
    ...(signalName(e.sig) ? { signal: signalName(e.sig) } : {}),
    tpid: e.tpid,
    result: e.ret,
  };
}

/** sigsnoop, or killsnoop (the same tool with -k always on). */
export function signalTool(name: "sigsnoop" | "killsnoop"): Tool<Options> {
  const killsnoop = name === "killsnoop";
  return eventTool({
    name,
    summary: killsnoop
      ? "Trace signals sent by kill(), tkill() and tgkill()."
      : "Trace standard and real-time signals.",
    examples: [
      [name, killsnoop ? "trace signals sent by kill syscalls" : "trace signals system-wide"],
      ...(killsnoop ? [] : [[`${name} -k`, "trace signals issued by kill syscall only"]]) as [
        string,
        string,
      ][],
      [`${name} -x`, "trace failed signals only"],
      [`${name} -p 1216`, "only trace PID 1216"],
      [`${name} -s 9`, "only trace signal 9"],
      [`${name} -n`, "print signal names instead of numbers"],
    ],
    flags: {
      kill: flag(
        killsnoop
          ? "kill syscalls only (always, for killsnoop)"
          : "trace signals issued by kill syscall only",
        "k",
      ),
      name: flag("output signal name instead of signal number", "n"),
      pid: option("PID", "process ID to trace", pidValue, { short: "p" }),
      signal: option("SIGNAL", "signal to trace (number or name)", signalArg, { short: "s" }),
      failed: flag("trace failed signals only", "x"),
    },
    options: (v) => ({ ...v, kill: v.kill || killsnoop }),
    variants: killsnoop
      ? [["-x"], ["-p", "1"], ["-s", "9"], ["-x", "-p", "1", "-s", "9"]]
      : [["-x"], ["-p", "1"], ["-s", "9"], ["-k"], ["-k", "-x", "-p", "1", "-s", "9"]],
  }, {
    recordSize: signalEvent.size,
    build: buildPrograms,
    header: () => HEADER,
    text: textLine,
    json: jsonFields,
  });
}

export const tool = signalTool("sigsnoop");

if (import.meta.main) await tool.main();
