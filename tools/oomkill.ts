#!/usr/bin/env -S deno run -A
/**
 * oomkill: trace out-of-memory kills, one line per victim with the task
 * that triggered the kill, the victim, its size and the load average.
 *
 * Events: oom:mark_victim (libbpf-tools and bcc use a kprobe on
 * oom_kill_process, absent here). The program runs in the task whose
 * allocation triggered the kill (its PID and comm are taken there) and
 * copies the tracepoint's record (victim PID, comm, total_vm, anon/file/
 * shmem RSS in kB); user space decodes it with the format file. Output
 * follows libbpf-tools oomkill, except that PAGES is the victim's resident
 * size in 4 KiB pages (the tracepoint has no total of the OOM constraint,
 * which libbpf-tools prints).
 *
 *     # deno run -A tools/oomkill.ts
 *     Tracing OOM kills... Ctrl-C to stop.
 *     10:31:02 Triggered by PID 4242 ("python3"), OOM kill of PID 4242 ("python3"), 8175 pages, loadavg: 0.21 0.13 0.09 3/212 4250
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import { eventTool } from "../lib/cli/drivers/events.ts";
import { type EventsDef, reserve, submit } from "../lib/dsl/events.ts";
import { kernelLayouts } from "../lib/dsl/layouts.ts";
import { tracepoint } from "../lib/dsl/program.ts";
import { CTX, r0, r1, r2, r3, r7 } from "../lib/dsl/registers.ts";
import { bytes, char, defineSchema } from "../lib/dsl/schema.ts";
import { decodeCString, escapeText } from "../lib/format/escape.ts";
import { formatTimeOfDay } from "../lib/format/time.ts";

/** Bytes of the tracepoint record copied: the fixed fields and the victim's comm after them. */
const RECORD_BYTES = 128;

/** What the operator asked for: nothing beyond the common flags. */
type Options = Record<string, never>;

// --- BPF side ---------------------------------------------------------------

/** One kill: the triggering task, and the mark_victim record as the kernel wrote it. */
const oomEvent = defineSchema("oom_event", {
  fpid: "u32",
  fcomm: char(16),
  record: bytes(RECORD_BYTES),
});

function buildPrograms(_o: Options, ch: EventsDef) {
  const p = tracepoint("oom", "mark_victim", { name: "oomkill" });
  const done = p.label();
  reserve(p, ch, r7, done);
  p.call("get_current_pid_tgid").rsh(r0, 32);
  oomEvent.store(p, r7, "fpid", r0);
  oomEvent.currentComm(p, r7, "fcomm");
  // The whole record (its comm is a __data_loc string after the fixed fields).
  oomEvent.fieldPtr(p, r1, r7, "record");
  p.mov(r2, RECORD_BYTES).mov(r3, CTX).call("probe_read_kernel");
  submit(p, ch, r7);
  p.bind(done);
  return [p.ret(0).build()];
}

// --- user side --------------------------------------------------------------

/** A kill as user space sees it. */
interface Kill {
  fpid: number;
  fcomm: string;
  tpid: number;
  tcomm: string;
  totalVmKb: number;
  rssKb: number;
  uid: number;
  oomScoreAdj: number;
}

/** Reads the record with the tracepoint's own format (offsets, the comm's data_loc). */
function decodeKill(data: Uint8Array): Kill {
  const e = oomEvent.decode(data);
  const rec = e.record, view = new DataView(rec.buffer, rec.byteOffset, rec.byteLength);
  const fmt = kernelLayouts.tracepoint("oom", "mark_victim");
  const at = (name: string) => fmt.field(name).offset;
  const u64 = (name: string) => Number(view.getBigUint64(at(name), true));
  const loc = view.getUint32(at("comm"), true);
  const start = loc & 0xffff, len = loc >>> 16;
  const tcomm = start + len <= rec.length ? decodeCString(rec.subarray(start, start + len)) : "?";
  return {
    fpid: e.fpid,
    fcomm: e.fcomm,
    tpid: view.getInt32(at("pid"), true),
    tcomm,
    totalVmKb: u64("total_vm"),
    rssKb: u64("anon_rss") + u64("file_rss") + u64("shmem_rss"),
    uid: view.getUint32(at("uid"), true),
    oomScoreAdj: view.getInt16(at("oom_score_adj"), true),
  };
}

function loadavg(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").trim();
  } catch {
    return "?";
  }
}

function textLine(data: Uint8Array): string {
  const k = decodeKill(data);
  return `${formatTimeOfDay(new Date())} Triggered by PID ${k.fpid} ("${escapeText(k.fcomm)}"), ` +
    `OOM kill of PID ${k.tpid} ("${escapeText(k.tcomm)}"), ${Math.floor(k.rssKb / 4)} pages, ` +
    `loadavg: ${loadavg()}\n`;
}

function jsonFields(data: Uint8Array) {
  const k = decodeKill(data);
  return { ...k, loadavg: loadavg() };
}

export const tool = eventTool({
  name: "oomkill",
  summary: "Trace OOM kills.",
  examples: [["oomkill", "trace OOM kills"]],
  flags: {},
}, {
  recordSize: oomEvent.size,
  build: buildPrograms,
  header: () => "Tracing OOM kills... Ctrl-C to stop.\n",
  text: textLine,
  json: jsonFields,
});

if (import.meta.main) await tool.main();
