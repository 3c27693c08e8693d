#!/usr/bin/env -S deno run -A
/**
 * statsnoop: trace the stat family of syscalls, one line per call with the
 * result (0 or -1 and the error) and the path asked about.
 *
 * Events: syscalls:sys_enter/sys_exit of statfs, newstat, newlstat,
 * newfstatat and statx (those this kernel has). The enter side saves the
 * path pointer per thread; the exit side reads the path and sends one
 * record through a ring buffer (a perf buffer on kernels before 5.8).
 * Output and flags follow libbpf-tools statsnoop.
 *
 *     # deno run -A tools/statsnoop.ts
 *     PID     COMM                 RET  ERR  PATH
 *     4120    python3              0    0    /etc/passwd
 *     4120    python3              -1   2    /nonexistent/zz
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import { eventTool } from "../lib/cli/drivers/events.ts";
import { flag, option, pidValue } from "../lib/cli/flags.ts";
import { syscallTracepointExists } from "../lib/cli/syscalls.ts";
import { type EventsDef, output, scratch } from "../lib/dsl/events.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import { type Probe, tracepoint } from "../lib/dsl/program.ts";
import { r0, r1, r10, r3, r7, r8, r9 } from "../lib/dsl/registers.ts";
import { char, defineSchema } from "../lib/dsl/schema.ts";
import { escapeText } from "../lib/format/escape.ts";

const PATH_SIZE = 256;
/** The syscalls, with their path argument's name. */
const SYSCALLS = [
  ["statfs", "pathname"],
  ["newstat", "filename"],
  ["statx", "filename"],
  ["newfstatat", "filename"],
  ["newlstat", "filename"],
] as const;

/** What the operator asked for. */
interface Options {
  timestamp: boolean;
  failed: boolean;
  pid?: number;
}

// --- BPF side ---------------------------------------------------------------

/** One call, as sent to user space (the path's bytes only). */
const statEvent = defineSchema("stat_event", {
  ts_ns: "u64",
  pid: "u32",
  ret: "s32",
  comm: char(16),
  path: char(PATH_SIZE),
});
const PATH_OFFSET = statEvent.offset("path");

/** The path pointer of the call in flight, by thread. */
const paths = defineMap({
  name: "values",
  type: "hash",
  keySize: 4,
  valueSize: 8,
  maxEntries: 10240,
});

function enterProgram(syscall: string, arg: string, o: Options): Probe {
  const p = tracepoint("syscalls", `sys_enter_${syscall}`, { name: `${syscall}_in` });
  const key = p.stack(4), path = p.stack(8);
  p.call("get_current_pid_tgid").store("u32", r10, key, r0);
  if (o.pid !== undefined) p.rsh(r0, 32).returnIf(r0, "!=", o.pid);
  p.ctx(r1, arg).store("u64", r10, path, r1);
  p.update(paths, key, path);
  return p.ret(0);
}

function exitProgram(syscall: string, o: Options, ch: EventsDef): Probe {
  const p = tracepoint("syscalls", `sys_exit_${syscall}`, { name: `${syscall}_out` });
  const key = p.stack(4), cleanup = p.label();
  p.call("get_current_pid_tgid").store("u32", r10, key, r0);
  p.lookup(paths, key).returnIf(r0, "==", 0).load(r9, "u64", r0, 0);
  p.ctx(r7, "ret");
  if (o.failed) p.jumpIf(r7, "s>=", 0, cleanup);
  scratch(p, ch, r8, cleanup);
  statEvent.store(p, r8, "ret", r7);
  p.call("get_current_pid_tgid").rsh(r0, 32);
  statEvent.store(p, r8, "pid", r0);
  p.ktime(r0);
  statEvent.store(p, r8, "ts_ns", r0);
  statEvent.currentComm(p, r8, "comm");
  p.mov(r3, r9);
  statEvent.readString(p, r8, "path", r3);
  p.if(r0, "s<", 1, () => {
    p.store("u8", r8, PATH_OFFSET, 0).mov(r0, 1); // unreadable: an empty path
  });
  p.clamp(r0, PATH_SIZE).add(r0, PATH_OFFSET).mov(r9, r0);
  output(p, ch, r8, r9);
  p.bind(cleanup).delete(paths, key);
  return p.ret(0);
}

function buildPrograms(o: Options, ch: EventsDef) {
  const programs: Probe[] = [];
  for (const [syscall, arg] of SYSCALLS) {
    if (!syscallTracepointExists(`sys_enter_${syscall}`)) continue; // arm64: no newstat/newlstat
    programs.push(enterProgram(syscall, arg, o), exitProgram(syscall, o, ch));
  }
  return programs.map((p) => p.build());
}

// --- user side --------------------------------------------------------------

/** -t: seconds since the first event (libbpf-tools' origin). */
interface Clock {
  first?: bigint;
}

function header(o: Options): string {
  return (o.timestamp ? "TIME(s)".padEnd(14) + " " : "") +
    `${"PID".padEnd(7)} ${"COMM".padEnd(20)} ${"RET".padEnd(4)} ${"ERR".padEnd(4)} PATH\n`;
}

function seconds(ts: bigint, clock: Clock): number {
  clock.first ??= ts;
  return Number(ts - clock.first) / 1e9;
}

function textLine(data: Uint8Array, o: Options, clock: Clock): string {
  const e = statEvent.decode(data);
  const ret = e.ret >= 0 ? e.ret : -1, err = e.ret >= 0 ? 0 : -e.ret;
  return (o.timestamp ? seconds(e.ts_ns, clock).toFixed(9).padEnd(14) + " " : "") +
    `${String(e.pid).padEnd(7)} ${escapeText(e.comm).padEnd(20)} ${String(ret).padEnd(4)} ` +
    `${String(err).padEnd(4)} ${escapeText(e.path)}\n`;
}

function jsonFields(data: Uint8Array, o: Options, clock: Clock) {
  const e = statEvent.decode(data);
  return {
    ...(o.timestamp ? { elapsed: seconds(e.ts_ns, clock) } : {}),
    pid: e.pid,
    comm: e.comm,
    ret: e.ret >= 0 ? e.ret : -1,
    err: e.ret >= 0 ? 0 : -e.ret,
    path: e.path,
  };
}

export const tool = eventTool({
  name: "statsnoop",
  summary: "Trace stat syscalls.",
  examples: [
    ["statsnoop", "trace all stat syscalls"],
    ["statsnoop -t", "include timestamps"],
    ["statsnoop -x", "only show failed stats"],
    ["statsnoop -p 1216", "only trace PID 1216"],
  ],
  flags: {
    pid: option("PID", "process ID to trace", pidValue, { short: "p" }),
    timestamp: flag("include timestamp on output", "t"),
    failed: flag("only show failed stats", "x"),
  },
  variants: [["-x"], ["-p", "1"], ["-x", "-p", "1"]],
}, {
  recordSize: statEvent.size,
  ringBytes: 4 << 20,
  scratch: true,
  build: buildPrograms,
  prepare: (): Clock => ({}),
  header,
  text: textLine,
  json: jsonFields,
});

if (import.meta.main) await tool.main();
