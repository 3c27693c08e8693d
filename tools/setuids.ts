#!/usr/bin/env -S deno run -A
/**
 * setuids: trace the setuid family of syscalls (setuid, setreuid,
 * setresuid, setfsuid), one line per call with the caller's UID before the
 * call, the arguments and the result: privilege changes, as sudo and login
 * programs make them.
 *
 * Events: syscalls:sys_enter/sys_exit of each (the enter side saves the UID
 * and arguments per thread, the exit side adds the result). Output follows
 * bpftrace's setuids.bt (there is no libbpf-tools or bcc version); setreuid
 * is added in the same style.
 *
 *     # deno run -A tools/setuids.ts
 *     Tracing setuid(2) family syscalls. Hit Ctrl-C to end.
 *     TIME     PID    COMM             UID    SYSCALL   ARGS (RET)
 *     10:25:32 16900  sudo             1000   setresuid ruid=-1 euid=0 suid=-1 (0)
 *     10:25:32 16900  sudo             1000   setuid    uid=0 (0)
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import { eventTool } from "../lib/cli/drivers/events.ts";
import { syscallTracepointExists } from "../lib/cli/syscalls.ts";
import { type EventsDef, output } from "../lib/dsl/events.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import { type Probe, tracepoint } from "../lib/dsl/program.ts";
import { r0, r1, r10, r8, r9 } from "../lib/dsl/registers.ts";
import { char, defineSchema } from "../lib/dsl/schema.ts";
import { escapeText } from "../lib/format/escape.ts";
import { formatTimeOfDay } from "../lib/format/time.ts";

/** The syscalls, in the order of the record's `call` field, with their arguments. */
const CALLS = [
  ["setuid", ["uid"]],
  ["setfsuid", ["uid"]],
  ["setresuid", ["ruid", "euid", "suid"]],
  ["setreuid", ["ruid", "euid"]],
] as const;

/** What the operator asked for: nothing beyond the common flags. */
type Options = Record<string, never>;

// --- BPF side ---------------------------------------------------------------

/** One call: kept from enter to exit by thread, then sent. */
const uidEvent = defineSchema("setuid_event", {
  pid: "u32",
  uid: "u32",
  call: "u32",
  arg0: "s32",
  arg1: "s32",
  arg2: "s32",
  ret: "s32",
  comm: char(16),
});
const ARGS = ["arg0", "arg1", "arg2"] as const;

const calls = defineMap({
  name: "calls",
  type: "hash",
  keySize: 4,
  valueSize: uidEvent.size,
  maxEntries: 10240,
});

function enterProgram(index: number): Probe {
  const [name, args] = CALLS[index];
  const p = tracepoint("syscalls", `sys_enter_${name}`, { name: `${name}_in` });
  const key = p.stack(4), ev = p.stack(uidEvent.size);
  p.call("get_current_pid_tgid").store("u32", r10, key, r0).rsh(r0, 32).mov(r8, r0);
  p.zeroStack(ev, uidEvent.size).stackPtr(r9, ev);
  uidEvent.store(p, r9, "pid", r8);
  uidEvent.store(p, r9, "call", index);
  p.call("get_current_uid_gid");
  uidEvent.store(p, r9, "uid", r0);
  args.forEach((arg, i) => {
    p.ctx(r1, arg);
    uidEvent.store(p, r9, ARGS[i], r1);
  });
  uidEvent.currentComm(p, r9, "comm");
  p.update(calls, key, ev);
  return p.ret(0);
}

function exitProgram(index: number, ch: EventsDef): Probe {
  const [name] = CALLS[index];
  const p = tracepoint("syscalls", `sys_exit_${name}`, { name: `${name}_out` });
  const key = p.stack(4);
  p.call("get_current_pid_tgid").store("u32", r10, key, r0);
  p.lookup(calls, key).returnIf(r0, "==", 0).mov(r9, r0);
  p.ctx(r1, "ret");
  uidEvent.store(p, r9, "ret", r1);
  output(p, ch, r9, uidEvent.size);
  p.delete(calls, key);
  return p.ret(0);
}

function buildPrograms(_o: Options, ch: EventsDef) {
  return CALLS.flatMap(([name], i) =>
    syscallTracepointExists(`sys_enter_${name}`) ? [enterProgram(i), exitProgram(i, ch)] : []
  ).map((p) => p.build());
}

// --- user side --------------------------------------------------------------

type Decoded = ReturnType<typeof uidEvent.decode>;

/** SYSCALL and ARGS (RET), as setuids.bt prints them. */
function callText(e: Decoded): string {
  const [name, args] = CALLS[e.call] ?? ["?", []];
  const values = args.map((a, i) => `${a}=${e[ARGS[i]]}`).join(" ");
  const ret = name === "setfsuid" ? `prevuid=${e.ret}` : String(e.ret);
  return `${name.padEnd(9)} ${values} (${ret})`;
}

function textLine(data: Uint8Array): string {
  const e = uidEvent.decode(data);
  return `${formatTimeOfDay(new Date()).padEnd(8)} ${String(e.pid).padEnd(6)} ` +
    `${escapeText(e.comm).padEnd(16)} ${String(e.uid).padEnd(6)} ${callText(e)}\n`;
}

function jsonFields(data: Uint8Array) {
  const e = uidEvent.decode(data);
  const [name, args] = CALLS[e.call] ?? ["?", []];
  return {
    pid: e.pid,
    comm: e.comm,
    uid: e.uid,
    syscall: name,
    args: Object.fromEntries(args.map((a, i) => [a, e[ARGS[i]]])),
    ret: e.ret,
  };
}

export const tool = eventTool({
  name: "setuids",
  summary: "Trace the setuid syscalls: privilege escalation.",
  examples: [["setuids", "trace setuid, setreuid, setresuid and setfsuid"]],
  flags: {},
}, {
  recordSize: uidEvent.size,
  build: buildPrograms,
  header: () =>
    "Tracing setuid(2) family syscalls. Hit Ctrl-C to end.\n" +
    `${"TIME".padEnd(8)} ${"PID".padEnd(6)} ${"COMM".padEnd(16)} ${"UID".padEnd(6)} ` +
    `${"SYSCALL".padEnd(9)} ARGS (RET)\n`,
  text: textLine,
  json: jsonFields,
});

if (import.meta.main) await tool.main();
