#!/usr/bin/env -S deno run -A
/**
 * gethostlatency: host name lookups through the C library and how long each
 * took, one line per getaddrinfo(), gethostbyname() or gethostbyname2()
 * call that returned.
 *
 * Events: a uprobe and a uretprobe on each of the three functions in libc
 * (-l names another file). The entry keeps the time and the name's address
 * per thread; the return sends the latency and copies the name then: the
 * lookup has read it, so its page is in memory (libbpf-tools copies it at
 * entry, where a page not yet touched reads as an empty HOST). With -p the
 * probes attach to that process only. Output follows libbpf-tools
 * gethostlatency: TIME is when the lookup returned.
 *
 *     # deno run -A tools/gethostlatency.ts
 *     TIME     PID     COMM             LATms      HOST
 *     10:44:32 26326   gai              0.179      localhost
 *     10:44:32 26326   curl             12.016     example.com
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import { eventTool } from "../lib/cli/drivers/events.ts";
import { option, pidValue, readableFile } from "../lib/cli/flags.ts";
import { UsageError } from "../lib/cli/usage.ts";
import { type EventsDef, reserve, submit } from "../lib/dsl/events.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import type { Probe } from "../lib/dsl/program.ts";
import { arg, uprobe } from "../lib/dsl/pt_regs.ts";
import { r0, r1, r10, r7, r8 } from "../lib/dsl/registers.ts";
import { char, defineSchema } from "../lib/dsl/schema.ts";
import { escapeText } from "../lib/format/escape.ts";
import { formatTimeOfDay } from "../lib/format/time.ts";
import { findLibrary } from "../lib/symbols/library_path.ts";

/** The lookup functions, in the order their index is sent. */
const FUNCTIONS = ["getaddrinfo", "gethostbyname", "gethostbyname2"] as const;
/** Bytes of the host name kept (as libbpf-tools). */
const HOST_LEN = 80;

/** What the operator asked for. */
interface Options {
  pid?: number;
  /** The C library (found when not given). */
  libc?: string;
}

function libcPath(o: Options): string {
  const path = o.libc ?? findLibrary("libc.so.6");
  if (path === undefined) throw new UsageError("no libc.so.6 found: give it with -l");
  return path;
}

// --- BPF side ---------------------------------------------------------------

/** A lookup in flight, by thread: when it started and the name's user address. */
const starts = defineMap({
  name: "starts",
  type: "hash",
  keySize: 4,
  valueSize: 16,
  maxEntries: 10240,
});

/** One lookup that returned. */
const lookupEvent = defineSchema("lookup_event", {
  delta_ns: "u64",
  pid: "u32",
  func: "u32",
  comm: char(16),
  host: char(HOST_LEN),
});

/** Entry: remember the time and the name pointer for this thread (NULL names are skipped). */
function entryProgram(p: Probe, o: Options): Probe {
  const key = p.stack(4), value = p.stack(16);
  if (o.pid !== undefined) p.filterCurrentTgid(o.pid);
  arg(p, r7, 0).returnIf(r7, "==", 0);
  p.call("get_current_pid_tgid").store("u32", r10, key, r0);
  p.ktime(r0).store("u64", r10, value, r0).store("u64", r10, value + 8, r7);
  p.update(starts, key, value);
  return p.ret(0);
}

/** Return: send the latency, the caller and the name, and forget the entry. */
function returnProgram(p: Probe, func: number, ch: EventsDef): Probe {
  const key = p.stack(4), saved = p.stack(16), done = p.label();
  p.call("get_current_pid_tgid").store("u32", r10, key, r0);
  p.lookup(starts, key).returnIf(r0, "==", 0);
  // Copy the entry to the stack and delete it before anything can fail.
  p.load(r1, "u64", r0, 0).store("u64", r10, saved, r1);
  p.load(r1, "u64", r0, 8).store("u64", r10, saved + 8, r1);
  p.delete(starts, key);
  reserve(p, ch, r7, done);
  p.ktime(r0).load(r1, "u64", r10, saved).sub(r0, r1);
  lookupEvent.store(p, r7, "delta_ns", r0);
  lookupEvent.store(p, r7, "func", func);
  p.call("get_current_pid_tgid").rsh(r0, 32);
  lookupEvent.store(p, r7, "pid", r0);
  lookupEvent.currentComm(p, r7, "comm");
  p.load(r8, "u64", r10, saved + 8);
  lookupEvent.readString(p, r7, "host", r8);
  submit(p, ch, r7);
  p.bind(done);
  return p.ret(0);
}

function buildPrograms(o: Options, ch: EventsDef) {
  const libc = libcPath(o);
  const pid = o.pid === undefined ? {} : { pid: o.pid };
  return FUNCTIONS.flatMap((fn, i) => [
    entryProgram(uprobe(libc, fn, { ...pid, name: `gethostlat_e${i}` }), o),
    returnProgram(uprobe(libc, fn, { ...pid, retprobe: true, name: `gethostlat_r${i}` }), i, ch),
  ]).map((p) => p.build());
}

// --- user side --------------------------------------------------------------

export const tool = eventTool({
  name: "gethostlatency",
  summary: "Show latency for getaddrinfo/gethostbyname[2] calls.",
  examples: [
    ["gethostlatency", "time getaddrinfo/gethostbyname[2] calls"],
    ["gethostlatency -p 1216", "only trace PID 1216"],
  ],
  flags: {
    libc: option("LIBC", "Specify which libc.so to use", readableFile, { short: "l" }),
    pid: option("PID", "Process ID to trace", pidValue, { short: "p" }),
  },
  variants: [["-p", "1"]],
}, {
  recordSize: lookupEvent.size,
  build: buildPrograms,
  header: () =>
    `${"TIME".padEnd(8)} ${"PID".padEnd(7)} ${"COMM".padEnd(16)} ${"LATms".padEnd(10)} HOST\n`,
  text: (data) => {
    const e = lookupEvent.decode(data);
    const ms = (Number(e.delta_ns) / 1e6).toFixed(3);
    return `${formatTimeOfDay(new Date()).padEnd(8)} ${String(e.pid).padEnd(7)} ` +
      `${escapeText(e.comm).padEnd(16)} ${ms.padEnd(10)} ${escapeText(e.host)}\n`;
  },
  json: (data) => {
    const e = lookupEvent.decode(data);
    return {
      pid: e.pid,
      comm: e.comm,
      function: FUNCTIONS[e.func] ?? String(e.func),
      ms: Number((Number(e.delta_ns) / 1e6).toFixed(3)),
      host: e.host,
    };
  },
});

if (import.meta.main) await tool.main();
