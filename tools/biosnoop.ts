#!/usr/bin/env -S deno run -A
/**
 * biosnoop: trace block device I/O, one line per completed request with the
 * process that started it, the disk, the operation, the sector, the size and
 * the latency from issue (and, with -Q, the time queued in the OS before).
 *
 * Events, as BTF-typed tracepoints: block_io_start (the process and comm that
 * started the request, in its own context), block_rq_insert (-Q),
 * block_rq_issue and block_rq_complete; per-request state is keyed by the
 * request pointer. libbpf-tools biosnoop needs fentry on
 * blk_account_io_start where the kernel has no block_io_start tracepoint;
 * here that tracepoint exists (Linux 6.5+) and needs no fentry. Output and
 * flags follow libbpf-tools biosnoop.
 *
 *     # deno run -A tools/biosnoop.ts -d loop0
 *     TIME(s)     COMM           PID     DISK    T    SECTOR     BYTES   LAT(ms)
 *     0.000000    bioworkload    41467   loop0   WS   0          4096      0.121
 *     0.000270    bioworkload    41467   loop0   WS   8          4096      0.084
 *
 * Differences from libbpf-tools: -c keeps the requests started by tasks of
 * the cgroup (the C tool tests whatever task completes the request); COMM is
 * the whole comm (the C tool copies 8 bytes of it).
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import { BlockRwbs } from "../lib/btf/block_rwbs.ts";
import { Btf } from "../lib/btf/btf.ts";
import { eventTool } from "../lib/cli/drivers/events.ts";
import {
  cgroupPath,
  cgroupV2Root,
  flag,
  integer,
  option,
  optionWithDefault,
  positional,
  seconds,
  wholeDisk,
} from "../lib/cli/flags.ts";
import { requestDiskDev, skipUnlessDisk } from "../lib/dsl/block_request.ts";
import { cgroupMap, skipUnlessInCgroup } from "../lib/dsl/cgroup.ts";
import { type EventsDef, reserve, submit } from "../lib/dsl/events.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import { type Probe, tpBtf } from "../lib/dsl/program.ts";
import { r0, r1, r10, r2, r7, r8, r9 } from "../lib/dsl/registers.ts";
import { char, defineSchema } from "../lib/dsl/schema.ts";
import { escapeText } from "../lib/format/escape.ts";
import { formatFixed, formatTimeOfDay, secondsBetween } from "../lib/format/time.ts";
import { setCgroup } from "../lib/kernel/map.ts";
import { type BlockDevice, devString, DiskNames } from "../lib/symbols/disks.ts";

const MAX_ENTRIES = 10240;
/** qdelta when -Q found no insert time for a request that went through a scheduler. */
const NO_QDELTA = -1;

/** What the operator asked for. */
interface Options {
  /** -Q: also the time from insertion into the OS queue to issue. */
  queued: boolean;
  /** -t: wall-clock timestamps instead of seconds since the first event. */
  timestamp: boolean;
  disk?: BlockDevice;
  cgroup?: string;
  /** -m: only requests at least this slow, in ms. */
  minMs: number;
  duration?: number;
}

// --- BPF side ---------------------------------------------------------------

/** Who started a request: the task in block_io_start. */
const requester = defineSchema("requester", { pid: "u32", comm: char(16) });
/** When a request was inserted (-Q) and issued, ns. */
const stage = defineSchema("stage", { insert: "u64", issue: "u64" });

/** One completed request, as sent to user space. */
const bioEvent = defineSchema("bio_event", {
  comm: char(16),
  delta: "u64",
  /** Issue minus insert, ns; -1: went through a scheduler but its insert was not seen. */
  qdelta: "s64",
  ts: "u64",
  sector: "u64",
  len: "u32",
  pid: "u32",
  cmd_flags: "u32",
  dev: "u32",
});

const whoStarted = defineMap({
  name: "infobyreq",
  type: "hash",
  keySize: 8,
  valueSize: requester.size,
  maxEntries: MAX_ENTRIES,
});
const start = defineMap({
  name: "start",
  type: "hash",
  keySize: 8,
  valueSize: stage.size,
  maxEntries: MAX_ENTRIES,
});

/** block_io_start: remember the task that started the request. */
function requesterProgram(o: Options): Probe {
  const p = tpBtf("block_io_start", { name: "biosnoop_start" });
  const done = p.label(), key = p.stack(8), value = p.stack(requester.size);
  if (o.cgroup !== undefined) skipUnlessInCgroup(p, done);
  p.ctx(r7, "rq");
  if (o.disk) skipUnlessDisk(p, r7, o.disk, done);
  p.store("u64", r10, key, r7).zeroStack(value, requester.size);
  p.call("get_current_pid_tgid").rsh(r0, 32).store("u32", r10, value, r0);
  p.stackPtr(r1, value + requester.offset("comm")).mov(r2, 16).call("get_current_comm");
  p.update(whoStarted, key, value);
  p.bind(done);
  return p.ret(0);
}

/** block_rq_insert / block_rq_issue: the time of this stage of the request. */
function stageProgram(event: "block_rq_insert" | "block_rq_issue", o: Options): Probe {
  const p = tpBtf(event, { name: `biosnoop_${event.slice("block_rq_".length)}` });
  const done = p.label(), key = p.stack(8), fresh = p.stack(stage.size);
  const at = stage.offset(event === "block_rq_insert" ? "insert" : "issue");
  p.ctx(r7, "rq").store("u64", r10, key, r7);
  p.lookup(start, key);
  p.if(r0, "!=", 0, () => {
    p.mov(r8, r0).ktime(r0).store("u64", r8, at, r0);
  }, () => {
    if (o.disk) skipUnlessDisk(p, r7, o.disk, done);
    p.zeroStack(fresh, stage.size).ktime(r0).store("u64", r10, fresh + at, r0);
    p.update(start, key, fresh);
  });
  p.bind(done);
  return p.ret(0);
}

/** block_rq_complete: the record, from the stages and the request's fields. */
function completeProgram(o: Options, ch: EventsDef): Probe {
  const p = tpBtf("block_rq_complete", { name: "biosnoop_done" });
  const key = p.stack(8), now = p.stack(8), delta = p.stack(8), qdelta = p.stack(8);
  const cleanup = p.label(), out = p.label();
  p.ctx(r7, "rq").store("u64", r10, key, r7);
  p.lookup(start, key).jumpIf(r0, "==", 0, out).mov(r8, r0);
  p.ktime(r0).store("u64", r10, now, r0);
  stage.load(p, r1, r8, "issue");
  p.jumpIf(r1, "==", 0, cleanup); // inserted, never issued (or issued before we attached)
  p.sub(r0, r1).jumpIf(r0, "s<", 0, cleanup);
  if (o.minMs > 0) p.jumpIf(r0, "<", o.minMs * 1_000_000, cleanup);
  p.store("u64", r10, delta, r0).store("u64", r10, qdelta, 0);
  if (o.queued) {
    // Behind an I/O scheduler a request is inserted before it is issued.
    p.field(r2, r7, "request", "q->elevator");
    p.if(r2, "!=", 0, () => {
      stage.load(p, r2, r8, "insert");
      p.if(r2, "==", 0, () => p.store("u64", r10, qdelta, NO_QDELTA), () => {
        p.sub(r1, r2).store("u64", r10, qdelta, r1);
      });
    });
  }
  p.lookup(whoStarted, key).mov(r9, r0);
  if (o.cgroup !== undefined) p.jumpIf(r9, "==", 0, cleanup); // not started in the cgroup
  reserve(p, ch, r8, cleanup);
  for (const [field, off] of [["delta", delta], ["qdelta", qdelta], ["ts", now]] as const) {
    p.load(r1, "u64", r10, off);
    bioEvent.store(p, r8, field, r1);
  }
  p.field(r1, r7, "request", "__sector");
  bioEvent.store(p, r8, "sector", r1);
  p.field(r1, r7, "request", "__data_len");
  bioEvent.store(p, r8, "len", r1);
  p.field(r1, r7, "request", "cmd_flags");
  bioEvent.store(p, r8, "cmd_flags", r1);
  requestDiskDev(p, r1, r7, r2);
  bioEvent.store(p, r8, "dev", r1);
  const commAt = bioEvent.offset("comm");
  p.if(r9, "==", 0, () => {
    // Not started through block_io_start (a flush, a request from before we attached).
    p.store("u64", r8, commAt, 0x3f).store("u64", r8, commAt + 8, 0);
    bioEvent.store(p, r8, "pid", 0);
  }, () => {
    requester.load(p, r1, r9, "pid");
    bioEvent.store(p, r8, "pid", r1);
    const from = requester.offset("comm");
    for (let i = 0; i < 16; i += 4) {
      p.load(r1, "u32", r9, from + i).store("u32", r8, commAt + i, r1);
    }
  });
  submit(p, ch, r8);
  p.bind(cleanup).delete(start, key).delete(whoStarted, key);
  p.bind(out);
  return p.ret(0);
}

function buildPrograms(o: Options, ch: EventsDef) {
  return [
    requesterProgram(o),
    ...(o.queued ? [stageProgram("block_rq_insert", o)] : []),
    stageProgram("block_rq_issue", o),
    completeProgram(o, ch),
  ].map((p) => p.build());
}

// --- user side --------------------------------------------------------------

/** What printing needs: disk names, the rwbs decoder, the first event's time. */
interface Printer {
  disks: DiskNames;
  rwbs: BlockRwbs;
  firstTs?: bigint;
}

function header(o: Options): string {
  return (o.timestamp ? "TIMESTAMP".padEnd(12) : "TIME(s)".padEnd(11)) + " " +
    `${"COMM".padEnd(14)} ${"PID".padEnd(7)} ${"DISK".padEnd(7)} ${"T".padEnd(4)} ` +
    `${"SECTOR".padEnd(10)} ${"BYTES".padEnd(7)} ` +
    (o.queued ? `${"QUE(ms)".padStart(7)} ` : "") + `${"LAT(ms)".padStart(7)}\n`;
}

function decode(data: Uint8Array, o: Options, pr: Printer) {
  const e = bioEvent.decode(data);
  pr.firstTs ??= e.ts;
  return {
    elapsed: secondsBetween(pr.firstTs, e.ts),
    comm: e.comm,
    pid: e.pid,
    disk: pr.disks.nameOf(e.dev) ?? "Unknown",
    dev: devString(e.dev),
    rwbs: pr.rwbs.format(e.cmd_flags),
    sector: e.sector,
    bytes: e.len,
    queuedMs: o.queued ? (e.qdelta === BigInt(NO_QDELTA) ? -1 : Number(e.qdelta) / 1e6) : undefined,
    latencyMs: Number(e.delta) / 1e6,
  };
}

/** `%H:%M:%S.mmm`, as libbpf-tools' -t (the time the line is printed). */
function wallClock(): string {
  const now = new Date();
  return `${formatTimeOfDay(now)}.${String(now.getMilliseconds()).padStart(3, "0")}`;
}

function textLine(data: Uint8Array, o: Options, pr: Printer): string {
  const x = decode(data, o, pr);
  return (o.timestamp ? wallClock().padEnd(12) : formatFixed(x.elapsed, 6).padEnd(11)) + " " +
    `${escapeText(x.comm).slice(0, 14).padEnd(14)} ${String(x.pid).padEnd(7)} ` +
    `${x.disk.padEnd(7)} ${x.rwbs.padEnd(4)} ${String(x.sector).padEnd(10)} ` +
    `${String(x.bytes).padEnd(7)} ` +
    (x.queuedMs !== undefined ? `${formatFixed(x.queuedMs, 3).padStart(7)} ` : "") +
    `${formatFixed(x.latencyMs, 3).padStart(7)}\n`;
}

function jsonFields(data: Uint8Array, o: Options, pr: Printer) {
  const { queuedMs, sector, ...x } = decode(data, o, pr);
  return {
    ...x,
    sector: Number(sector),
    ...(o.queued ? { queuedMs: queuedMs === -1 ? null : queuedMs } : {}),
  };
}

export const tool = eventTool({
  name: "biosnoop",
  summary: "Trace block I/O.",
  examples: [
    ["biosnoop", "trace all block I/O"],
    ["biosnoop -Q", "include OS queued time in I/O time"],
    ["biosnoop -t", "use timestamps instead"],
    ["biosnoop 10", "trace for 10 seconds only"],
    ["biosnoop -d sdc", "trace sdc only"],
    ["biosnoop -c CG", "trace processes under cgroup v2 path CG"],
    ["biosnoop -m 1", "trace for slower than 1ms"],
  ],
  flags: {
    queued: flag("include OS queued time in I/O time", "Q"),
    disk: option("DISK", "trace this disk only", wholeDisk, { short: "d" }),
    cgroup: option("CG", "trace processes in this cgroup v2 path only", cgroupPath, { short: "c" }),
    minMs: optionWithDefault(
      "MIN",
      "min latency to trace, in ms",
      integer(0, 1_000_000, "latency"),
      0,
      {
        short: "m",
        long: "min",
      },
    ),
    timestamp: flag("include timestamp on output", "t"),
  },
  positionals: {
    duration: positional("duration", "total duration of trace in seconds", seconds),
  },
  variants: [["-Q"], ["-m", "1"], ["-Q", "-c", cgroupV2Root()]],
  options: (v): Options => v,
}, {
  recordSize: bioEvent.size,
  build: buildPrograms,
  prepare: (): Printer => ({ disks: new DiskNames(), rwbs: new BlockRwbs(Btf.vmlinux()) }),
  initMaps: (o, maps) => o.cgroup !== undefined && setCgroup(maps.get(cgroupMap)!, o.cgroup),
  header,
  text: textLine,
  json: jsonFields,
  durationSeconds: (o) => o.duration,
});

if (import.meta.main) await tool.main();
