#!/usr/bin/env -S deno run -A
/**
 * syscount: count system calls, by syscall or (-P) by process, with their
 * total time (-L), once per interval or at Ctrl-C, the top N first.
 *
 * Events: raw_syscalls:sys_exit counts each call (its syscall number and
 * return value: -x failures only, -e one errno only); with -L,
 * raw_syscalls:sys_enter starts a per-thread timer that the exit reads.
 * Counts live in a hash keyed by syscall number (or PID), read and cleared
 * at each interval. Output and flags follow libbpf-tools syscount.
 *
 *     # deno run -A tools/syscount.ts -d 1
 *     Tracing syscalls, printing top 10... Ctrl+C to quit.
 *     [10:14:28]
 *     SYSCALL                   COUNT
 *     read                       1015
 *     openat                      284
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import { intervalTool } from "../lib/cli/drivers/interval.ts";
import {
  cgroupPath,
  cgroupV2Root,
  flag,
  integer,
  option,
  optionWithDefault,
  pidValue,
} from "../lib/cli/flags.ts";
import { writeOut } from "../lib/cli/output.ts";
import type { Session } from "../lib/cli/session.ts";
import type { Tool } from "../lib/cli/tool.ts";
import { UsageError } from "../lib/cli/usage.ts";
import { cgroupMap, skipUnlessInCgroup } from "../lib/dsl/cgroup.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import type { Label } from "../lib/dsl/builder.ts";
import type { Probe } from "../lib/dsl/program.ts";
import { rawSyscallProbe } from "../lib/dsl/raw_syscalls.ts";
import { r0, r1, r10, r2, r7, r8, r9 } from "../lib/dsl/registers.ts";
import { char, defineSchema } from "../lib/dsl/schema.ts";
import { errnoNumber } from "../lib/format/errno.ts";
import { escapeText } from "../lib/format/escape.ts";
import { formatTimeOfDay } from "../lib/format/time.ts";
import { setCgroup } from "../lib/kernel/map.ts";
import { syscallName, syscallNames } from "../lib/symbols/syscall_names.ts";

/** What the operator asked for. */
interface Options {
  pid?: number;
  failures: boolean;
  errno?: number;
  latency: boolean;
  milliseconds: boolean;
  process: boolean;
  top: number;
  list: boolean;
  cgroup?: string;
  /** Seconds between reports (-i, or -d alone); undefined: at Ctrl-C. */
  interval?: number;
  /** Reports before exiting (-d); undefined: until Ctrl-C. */
  count?: number;
}

/** -e: an errno as a number or a name (ENOENT). */
function errnoArg(text: string): number {
  if (/^\d+$/.test(text) && Number(text) > 0 && Number(text) < 4096) return Number(text);
  const n = errnoNumber(text);
  if (n === undefined) throw new UsageError(`invalid errno '${text}'`);
  return n;
}

// --- BPF side ---------------------------------------------------------------

/** What is counted per syscall (or per process). */
const counter = defineSchema("syscount_value", {
  count: "u64",
  total_ns: "u64",
  comm: char(16),
});

/** Counts by syscall number, or by PID with -P. */
const counts = defineMap({
  name: "data",
  type: "hash",
  keySize: 4,
  valueSize: counter.size,
  maxEntries: 10240,
});

/** -L: when the thread's current syscall started. */
const start = defineMap({
  name: "start",
  type: "hash",
  keySize: 4,
  valueSize: 8,
  maxEntries: 10240,
});

/** Jumps to `skip` unless the current task passes -p and -c. */
function filters(p: Probe, o: Options, skip: Label): void {
  if (o.pid !== undefined) p.call("get_current_pid_tgid").rsh(r0, 32).jumpIf(r0, "!=", o.pid, skip);
  if (o.cgroup !== undefined) skipUnlessInCgroup(p, skip);
}

/** sys_enter (-L only): start this thread's timer. */
function enterProgram(o: Options): Probe {
  const p = rawSyscallProbe("enter", "sys_enter");
  const key = p.stack(4), done = p.label();
  filters(p, o, done);
  p.call("get_current_pid_tgid").store("u32", r10, key, r0);
  p.startTimer(start, key);
  return p.bind(done).ret(0);
}

/** sys_exit: filter on the result, then count (and add the time, -L). */
function exitProgram(o: Options): Probe {
  const p = rawSyscallProbe("exit", "sys_exit");
  const key = p.stack(4), value = p.stack(counter.size), done = p.label();
  filters(p, o, done);
  p.ctx(r7, "id");
  p.jumpIf(r7, "==", -1, done); // -1 (as u32): not a syscall (a signal restart)
  p.ctx(r8, "ret");
  if (o.failures) p.jumpIf(r8, "s>=", 0, done);
  if (o.errno !== undefined) p.jumpIf(r8, "!=", -o.errno, done);
  p.mov(r9, 0);
  if (o.latency) {
    const tid = p.stack(4);
    p.call("get_current_pid_tgid").store("u32", r10, tid, r0);
    p.elapsed(r9, start, tid, done);
    p.delete(start, tid);
  }
  if (o.process) p.call("get_current_pid_tgid").rsh(r0, 32).store("u32", r10, key, r0);
  else p.store("u32", r10, key, r7);
  p.lookup(counts, key);
  p.if(r0, "==", 0, () => {
    p.zeroStack(value, counter.size);
    if (o.process) {
      p.stackPtr(r1, value + counter.offset("comm")).mov(r2, 16).call("get_current_comm");
    }
    p.update(counts, key, value, 1 /* BPF_NOEXIST */);
    p.lookup(counts, key);
  });
  p.jumpIf(r0, "==", 0, done);
  p.mov(r1, 1).atomicAdd("u64", r0, counter.offset("count"), r1);
  if (o.latency) p.atomicAdd("u64", r0, counter.offset("total_ns"), r9);
  p.bind(done);
  return p.ret(0);
}

function buildPrograms(o: Options) {
  const programs = o.latency ? [enterProgram(o), exitProgram(o)] : [exitProgram(o)];
  return programs.map((p) => p.build());
}

// --- user side --------------------------------------------------------------

/** One row: a syscall (or a process) with its count and total time. */
interface Row {
  key: number;
  comm: string;
  count: number;
  totalNs: number;
}

/** Reads and clears the counts; the top N rows, by count or (-L) by time. */
function readRows(session: Session, o: Options): Row[] {
  const map = session.maps.get(counts)!;
  const rows: Row[] = [];
  for (const [k, v] of map.entries()) {
    const c = counter.decode(v);
    rows.push({
      key: new DataView(k.buffer).getUint32(0, true),
      comm: c.comm,
      count: Number(c.count),
      totalNs: Number(c.total_ns),
    });
    map.delete(k);
  }
  rows.sort((a, b) => o.latency ? b.totalNs - a.totalNs : b.count - a.count);
  return rows.slice(0, o.top);
}

function timeHeader(o: Options): string {
  return `TIME (${o.milliseconds ? "ms" : "us"})`;
}

function timeOf(row: Row, o: Options): number {
  return row.totalNs / (o.milliseconds ? 1e6 : 1e3);
}

function textReport(rows: Row[], o: Options): string {
  const lines = [`[${formatTimeOfDay(new Date())}]`];
  const time = (s: string) => (o.latency ? " " + s.padStart(16) : "");
  lines.push(
    o.process
      ? `${"PID".padEnd(6)} ${"COMM".padEnd(15)} ${"COUNT".padStart(8)}${time(timeHeader(o))}`
      : `${"SYSCALL".padEnd(22)} ${"COUNT".padStart(8)}${time(timeHeader(o))}`,
  );
  for (const r of rows) {
    const t = time(timeOf(r, o).toFixed(3));
    lines.push(
      o.process
        ? `${String(r.key).padEnd(6)} ${escapeText(r.comm).slice(0, 15).padEnd(15)} ` +
          `${String(r.count).padStart(8)}${t}`
        : `${syscallName(r.key).padEnd(22)} ${String(r.count).padStart(8)}${t}`,
    );
  }
  return lines.join("\n") + "\n\n";
}

function jsonReport(rows: Row[], o: Options): Record<string, unknown> {
  const time = (r: Row) =>
    o.latency ? { [o.milliseconds ? "totalMs" : "totalUs"]: Number(timeOf(r, o).toFixed(3)) } : {};
  return o.process
    ? { processes: rows.map((r) => ({ pid: r.key, comm: r.comm, count: r.count, ...time(r) })) }
    : {
      syscalls: rows.map((r) => ({
        syscall: syscallName(r.key),
        nr: r.key,
        count: r.count,
        ...time(r),
      })),
    };
}

const declared = intervalTool({
  name: "syscount",
  summary: "Summarize syscall counts and latencies.",
  examples: [
    ["syscount", "print top 10 syscalls by count at Ctrl-C"],
    ["syscount -i 1", "every second"],
    ["syscount -p $(pidof dd)", "look only at a particular process"],
    ["syscount -L", "measure and sort output by latency"],
    ["syscount -P", "group statistics by pid, not by syscall"],
    ["syscount -x -i 5", "count only failed syscalls"],
    ["syscount -e ENOENT -i 5", "count only syscalls failed with a given errno"],
    ["syscount -c CG", "trace process under cgroupsPath CG"],
    ["syscount -l", "list the syscalls this machine knows"],
  ],
  flags: {
    cgroup: option("CG", "trace process in cgroup path", cgroupPath, { short: "c" }),
    duration: option(
      "SECS",
      "total tracing duration (seconds)",
      integer(1, 99_999_999, "duration"),
      {
        short: "d",
      },
    ),
    errno: option(
      "ERRNO",
      "only syscalls failing with this error (2, ENOENT)",
      errnoArg,
      {
        short: "e",
      },
    ),
    intervalSecs: optionWithDefault(
      "INTERVAL",
      "print summary every INTERVAL seconds (0: at Ctrl-C)",
      integer(0, 99_999_999, "interval"),
      0,
      { short: "i", long: "interval" },
    ),
    list: flag("print list of recognized syscalls and exit", "l"),
    latency: flag("collect syscall latency", "L"),
    milliseconds: flag("latency in milliseconds (default: microseconds)", "m"),
    pid: option("PID", "process PID to trace", pidValue, { short: "p" }),
    process: flag("count by process and not by syscall", "P"),
    top: optionWithDefault(
      "TOP",
      "print only the top syscalls (default 10)",
      integer(1, 1_000_000, "TOP"),
      10,
      {
        short: "T",
      },
    ),
    failures: flag("trace only failed syscalls", "x"),
  },
  options: (v): Options => {
    const interval = v.intervalSecs || v.duration;
    return {
      ...v,
      interval,
      count: v.duration === undefined ? undefined : Math.max(1, Math.floor(v.duration / interval!)),
    };
  },
  variants: [["-L"], ["-P"], ["-x"], ["-e", "ENOENT"], ["-p", "1"], ["-c", cgroupV2Root()], [
    "-L",
    "-P",
    "-p",
    "1",
    "-c",
    cgroupV2Root(),
    "-x",
  ]],
}, {
  banner: (o) => `Tracing syscalls, printing top ${o.top}... Ctrl+C to quit.`,
  build: buildPrograms,
  initMaps: (o, maps) => o.cgroup !== undefined && setCgroup(maps.get(cgroupMap)!, o.cgroup),
  read: readRows,
  text: textReport,
  json: jsonReport,
  ownHeading: true,
});

/** -l prints the syscall list and exits, loading nothing. */
export const tool: Tool<Options> = {
  ...declared,
  main: (argv = Deno.args, name) => {
    let listOnly = false;
    try {
      listOnly = declared.parse(argv).options.list;
    } catch { /* main reports it */ }
    if (!listOnly) return declared.main(argv, name);
    const lines = [...syscallNames()].map(([nr, n]) => `${String(nr).padStart(3)}: ${n}`);
    writeOut(lines.join("\n") + "\n");
    Deno.exit(0);
  },
};

if (import.meta.main) await tool.main();
