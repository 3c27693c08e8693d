#!/usr/bin/env -S deno run -A
/**
 * syncsnoop: trace the sync family of syscalls (sync, syncfs, fsync,
 * fdatasync, msync, sync_file_range), one line per call with the time, the
 * process name and the call.
 *
 * Events: syscalls:sys_enter_<each> (those this kernel has; arm's
 * sync_file_range2 too), one record per call through a ring buffer (a perf
 * buffer on kernels before 5.8). Output follows libbpf-tools syncsnoop:
 * TIME(s) is the monotonic clock (CLOCK_MONOTONIC, as bpf_ktime_get_ns) in
 * seconds, here to the nanosecond.
 *
 *     # deno run -A tools/syncsnoop.ts
 *     TIME(s)            COMM             CALL
 *     91273.482912101    python3          sync
 *     91273.483032510    python3          fsync
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import { eventTool } from "../lib/cli/drivers/events.ts";
import { syscallTracepointExists } from "../lib/cli/syscalls.ts";
import { type EventsDef, reserve, submit } from "../lib/dsl/events.ts";
import { tracepoint } from "../lib/dsl/program.ts";
import { r0, r7 } from "../lib/dsl/registers.ts";
import { char, defineSchema } from "../lib/dsl/schema.ts";
import { escapeText } from "../lib/format/escape.ts";

/** The calls traced, in the order of the record's `sys` field. */
const CALLS = [
  "sync",
  "fsync",
  "fdatasync",
  "msync",
  "sync_file_range",
  "syncfs",
  "sync_file_range2",
];

/** What the operator asked for: nothing beyond the common flags. */
type Options = Record<string, never>;

// --- BPF side ---------------------------------------------------------------

/** One call, as sent to user space. */
const syncEvent = defineSchema("sync_event", {
  ts_ns: "u64",
  pid: "u32",
  sys: "u32",
  comm: char(16),
});

function buildPrograms(_o: Options, ch: EventsDef) {
  return CALLS.flatMap((call, sys) => {
    if (!syscallTracepointExists(`sys_enter_${call}`)) return [];
    const p = tracepoint("syscalls", `sys_enter_${call}`, { name: `sync_${sys}` });
    const done = p.label();
    reserve(p, ch, r7, done);
    p.ktime(r0);
    syncEvent.store(p, r7, "ts_ns", r0);
    p.call("get_current_pid_tgid").rsh(r0, 32);
    syncEvent.store(p, r7, "pid", r0);
    syncEvent.store(p, r7, "sys", sys);
    syncEvent.currentComm(p, r7, "comm");
    submit(p, ch, r7);
    p.bind(done);
    return [p.ret(0).build()];
  });
}

// --- user side --------------------------------------------------------------

/** Nanoseconds as seconds with nine decimals, exactly. */
function secondsText(ns: bigint): string {
  return `${ns / 1_000_000_000n}.${String(ns % 1_000_000_000n).padStart(9, "0")}`;
}

function textLine(data: Uint8Array): string {
  const e = syncEvent.decode(data);
  return `${secondsText(e.ts_ns).padEnd(18)} ${escapeText(e.comm).padEnd(16)} ` +
    `${CALLS[e.sys] ?? "?"}\n`;
}

function jsonFields(data: Uint8Array) {
  const e = syncEvent.decode(data);
  return { ts: Number(e.ts_ns) / 1e9, comm: e.comm, pid: e.pid, call: CALLS[e.sys] };
}

export const tool = eventTool({
  name: "syncsnoop",
  summary: "Trace sync syscalls.",
  examples: [["syncsnoop", "trace sync syscalls"]],
  flags: {},
}, {
  recordSize: syncEvent.size,
  build: buildPrograms,
  header: () => `${"TIME(s)".padEnd(18)} ${"COMM".padEnd(16)} CALL\n`,
  text: textLine,
  json: jsonFields,
});

if (import.meta.main) await tool.main();
