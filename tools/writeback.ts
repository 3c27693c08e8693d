#!/usr/bin/env -S deno run -A
/**
 * writeback: trace file system writeback: one line per pass of a flusher
 * thread writing dirty pages back to a device, with the device (its bdi),
 * the pages that pass wrote, why it ran and how long it took. Useful to
 * correlate latency outliers with writeback.
 *
 * Events: writeback:writeback_start and writeback_written, paired by the
 * flusher thread's TID (a pass starts and ends in the same thread). Output
 * follows the bpftrace book tool writeback.bt, with two differences: PAGES
 * is what the pass wrote (the `nr_pages` budget at the start less what was
 * left at the end; writeback.bt prints the low 16 bits of what was left),
 * and REASON names come from this kernel's tracepoint format (writeback.bt
 * has a table from Linux 4.x); a pass already running when tracing began is
 * not shown.
 *
 *     # deno run -A tools/writeback.ts
 *     Tracing writeback... Hit Ctrl-C to end.
 *     TIME      DEVICE   PAGES    REASON           ms
 *     10:33:39  7:1      2048     sync             4.487
 *     10:33:41  254:0    12       periodic         0.104
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import { eventTool } from "../lib/cli/drivers/events.ts";
import { type EventsDef, reserve, submit } from "../lib/dsl/events.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import { type Probe, tracepoint } from "../lib/dsl/program.ts";
import { CTX, r0, r1, r10, r2, r7, r8, r9 } from "../lib/dsl/registers.ts";
import { char, defineSchema } from "../lib/dsl/schema.ts";
import { escapeText } from "../lib/format/escape.ts";
import { formatTimeOfDay } from "../lib/format/time.ts";
import { tracefsRoot } from "../lib/tracefs/tracefs_root.ts";
import { devString } from "../lib/symbols/disks.ts";

/** Reason names of Linux 5.x-6.x (enum wb_reason), when the format cannot be read. */
const REASONS = [
  "background",
  "vmscan",
  "sync",
  "periodic",
  "laptop_timer",
  "fs_free_space",
  "forker_thread",
  "foreign_flush",
];

// --- BPF side ---------------------------------------------------------------

/** A pass in progress, by flusher TID. */
const pass = defineSchema("wb_pass", { ts: "u64", nr_pages: "s64" });
/** One pass, as sent to user space. */
const passEvent = defineSchema("wb_event", {
  name: char(32),
  lat_ns: "u64",
  pages: "s64",
  sb_dev: "u32",
  reason: "s32",
});

const passes = defineMap({
  name: "passes",
  type: "hash",
  keySize: 4,
  valueSize: pass.size,
  maxEntries: 1024,
});

function startProgram(): Probe {
  const p = tracepoint("writeback", "writeback_start", { name: "writeback_start" });
  const tid = p.stack(4), value = p.stack(pass.size);
  p.call("get_current_pid_tgid").store("u32", r10, tid, r0);
  p.ctx(r1, "nr_pages").store("u64", r10, value + pass.offset("nr_pages"), r1);
  p.ktime(r0).store("u64", r10, value + pass.offset("ts"), r0);
  p.update(passes, tid, value);
  return p.ret(0);
}

function writtenProgram(ch: EventsDef): Probe {
  const p = tracepoint("writeback", "writeback_written", { name: "writeback_done" });
  const tid = p.stack(4), cleanup = p.label(), out = p.label();
  p.call("get_current_pid_tgid").store("u32", r10, tid, r0);
  p.lookup(passes, tid).jumpIf(r0, "==", 0, out).mov(r8, r0);
  p.ktime(r9);
  pass.load(p, r1, r8, "ts");
  p.sub(r9, r1);
  reserve(p, ch, r7, cleanup);
  passEvent.store(p, r7, "lat_ns", r9);
  pass.load(p, r1, r8, "nr_pages");
  p.ctx(r2, "nr_pages").sub(r1, r2);
  passEvent.store(p, r7, "pages", r1);
  p.ctx(r1, "sb_dev");
  passEvent.store(p, r7, "sb_dev", r1);
  p.ctx(r1, "reason");
  passEvent.store(p, r7, "reason", r1);
  // The bdi's name, a char[32] in the record: copied as four u64.
  const name = p.context.kind === "tracepoint" ? p.context.format.field("name").offset : 8;
  for (let i = 0; i < 32; i += 8) {
    p.load(r1, "u64", CTX, name + i).store("u64", r7, passEvent.offset("name") + i, r1);
  }
  submit(p, ch, r7);
  p.bind(cleanup).delete(passes, tid);
  p.bind(out);
  return p.ret(0);
}

// --- user side --------------------------------------------------------------

/** REASON names in the order of the kernel's enum, from the tracepoint's print format. */
function reasonNames(): string[] {
  try {
    const text = Deno.readTextFileSync(
      `${tracefsRoot()}/events/writeback/writeback_written/format`,
    );
    const table = text.match(
      /__print_symbolic\(REC->reason,((?:\s*\{\s*\d+,\s*"[^"]*"\s*\},?)+)\)/,
    );
    if (table) {
      const names: string[] = [];
      for (const m of table[1].matchAll(/\{\s*(\d+),\s*"([^"]*)"\s*\}/g)) {
        names[Number(m[1])] = m[2];
      }
      if (names.length > 0) return names;
    }
  } catch { /* no tracefs: the 6.x table */ }
  return REASONS;
}

function header(): string {
  return "Tracing writeback... Hit Ctrl-C to end.\n" +
    `${"TIME".padEnd(9)} ${"DEVICE".padEnd(8)} ${"PAGES".padEnd(8)} ${"REASON".padEnd(16)} ms\n`;
}

function decode(data: Uint8Array, reasons: string[]) {
  const e = passEvent.decode(data);
  return {
    device: e.name,
    sbDev: devString(e.sb_dev),
    pages: Number(e.pages),
    reason: reasons[e.reason] ?? String(e.reason),
    latencyMs: Number(e.lat_ns) / 1e6,
    latencyUs: e.lat_ns / 1000n,
  };
}

function textLine(data: Uint8Array, reasons: string[]): string {
  const x = decode(data, reasons);
  const ms = `${x.latencyUs / 1000n}.${String(x.latencyUs % 1000n).padStart(3, "0")}`;
  return `${formatTimeOfDay(new Date())}  ${escapeText(x.device).padEnd(8)} ` +
    `${String(x.pages).padEnd(8)} ${x.reason.padEnd(16)} ${ms}\n`;
}

function jsonFields(data: Uint8Array, reasons: string[]) {
  const { latencyUs: _, ...x } = decode(data, reasons);
  return x;
}

export const tool = eventTool({
  name: "writeback",
  summary: "Trace file system writeback events with details.",
  examples: [["writeback", "trace writeback passes until Ctrl-C"]],
  flags: {},
}, {
  recordSize: passEvent.size,
  build: (_o, ch) => [startProgram(), writtenProgram(ch)].map((p) => p.build()),
  prepare: reasonNames,
  header,
  text: (data, _o, reasons) => textLine(data, reasons),
  json: (data, _o, reasons) => jsonFields(data, reasons),
});

if (import.meta.main) await tool.main();
