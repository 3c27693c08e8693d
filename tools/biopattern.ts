#!/usr/bin/env -S deno run -A
/**
 * biopattern: how random or sequential each disk's I/O is. A completed
 * request is sequential when it starts where the disk's previous completed
 * request ended, random otherwise; per interval, per disk: the percentages,
 * the requests compared and their Kbytes.
 *
 * Events: block_rq_complete as a BTF-typed tracepoint (the request's disk,
 * start sector and the bytes completed). As libbpf-tools biopattern, a
 * disk's first request after each report only sets where the next one must
 * start (the counters are removed at every report), so N requests in one
 * interval are counted as N-1. Output and flags follow libbpf-tools.
 *
 *     # deno run -A tools/biopattern.ts -d loop0 1 1
 *     Tracing block device I/O requested seeks... Hit Ctrl-C to end.
 *     DISK     %RND  %SEQ    COUNT     KBYTES
 *     loop0       0   100      399       1596
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import {
  type IntervalOptions,
  intervalPositionals,
  intervalTool,
  timestampFlag,
} from "../lib/cli/drivers/interval.ts";
import { option, wholeDisk } from "../lib/cli/flags.ts";
import type { Session } from "../lib/cli/session.ts";
import { requestDiskDev, skipUnlessDisk } from "../lib/dsl/block_request.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import { type Probe, tpBtf } from "../lib/dsl/program.ts";
import { r0, r1, r10, r2, r7, r8, r9 } from "../lib/dsl/registers.ts";
import { formatTimeOfDay } from "../lib/format/time.ts";
import { type BlockDevice, devString, DiskNames } from "../lib/symbols/disks.ts";

/** What the operator asked for. */
interface Options extends IntervalOptions {
  /** -d: the one disk to trace. */
  disk?: BlockDevice;
}

// --- BPF side ---------------------------------------------------------------

/** The counter value, by disk (dev_t): u64s. */
const COUNTER = { lastSector: 0, sequential: 8, random: 16, bytes: 24, size: 32 } as const;
const counters = defineMap({
  name: "counters",
  type: "hash",
  keySize: 4,
  valueSize: COUNTER.size,
  maxEntries: 64,
});

function completeProgram(o: Options): Probe {
  const p = tpBtf("block_rq_complete", { name: "biopattern" });
  const done = p.label(), key = p.stack(4), zero = p.stack(COUNTER.size);
  p.ctx(r7, "rq");
  if (o.disk) skipUnlessDisk(p, r7, o.disk, done);
  requestDiskDev(p, r8, r7, r1).store("u32", r10, key, r8);
  p.zeroStack(zero, COUNTER.size);
  p.lookupOrInit(counters, key, zero).jumpIf(r0, "==", 0, done).mov(r9, r0);
  p.field(r8, r7, "request", "__sector");
  p.load(r1, "u64", r9, COUNTER.lastSector);
  p.if(r1, "!=", 0, () => {
    const seq = p.label(), counted = p.label();
    p.jumpIf(r1, "==", r8, seq);
    p.mov(r2, 1).atomicAdd("u64", r9, COUNTER.random, r2).goto(counted);
    p.bind(seq).mov(r2, 1).atomicAdd("u64", r9, COUNTER.sequential, r2);
    p.bind(counted);
    p.ctx(r2, "nr_bytes").mov32(r2, r2).atomicAdd("u64", r9, COUNTER.bytes, r2);
  });
  // where the next sequential request starts: sector + nr_bytes / 512
  p.ctx(r2, "nr_bytes").mov32(r2, r2).rsh(r2, 9).add(r8, r2);
  p.store("u64", r9, COUNTER.lastSector, r8);
  p.bind(done);
  return p.ret(0);
}

// --- user side --------------------------------------------------------------

/** One disk's counts in an interval. */
interface DiskCounts {
  dev: number;
  disk: string;
  random: number;
  sequential: number;
  bytes: number;
}

/** Reads every disk's counters, then removes them all (as libbpf-tools). */
function readCounts(session: Session, _o: Options, names: DiskNames): DiskCounts[] {
  const map = session.maps.get(counters)!;
  const rows = map.entries().map(([k, v]) => {
    const value = new DataView(v.buffer);
    const dev = new DataView(k.buffer).getUint32(0, true);
    return {
      dev,
      disk: names.nameOf(dev) ?? "Unknown",
      random: Number(value.getBigUint64(COUNTER.random, true)),
      sequential: Number(value.getBigUint64(COUNTER.sequential, true)),
      bytes: Number(value.getBigUint64(COUNTER.bytes, true)),
    };
  });
  for (const k of map.keys()) map.delete(k);
  return rows.filter((r) => r.random + r.sequential > 0);
}

function header(o: Options): string {
  return (o.timestamp ? "TIME".padEnd(9) + " " : "") +
    `${"DISK".padEnd(7)} ${"%RND".padStart(5)} ${"%SEQ".padStart(5)} ` +
    `${"COUNT".padStart(8)} ${"KBYTES".padStart(10)}`;
}

/** libbpf-tools' line: `%-7s %5ld %5ld %8d %10lld` (integer percentages, rounded down). */
function formatText(rows: DiskCounts[], o: Options): string {
  return rows.map((r) => {
    const total = r.random + r.sequential;
    return (o.timestamp ? formatTimeOfDay(new Date()).padEnd(9) + " " : "") +
      `${r.disk.padEnd(7)} ${String(Math.floor(r.random * 100 / total)).padStart(5)} ` +
      `${String(Math.floor(r.sequential * 100 / total)).padStart(5)} ` +
      `${String(total).padStart(8)} ${String(Math.floor(r.bytes / 1024)).padStart(10)}\n`;
  }).join("");
}

export const tool = intervalTool({
  name: "biopattern",
  summary: "Show block device I/O pattern: random or sequential, per disk.",
  examples: [
    ["biopattern", "show block I/O pattern"],
    ["biopattern 1 10", "print 1 second summaries, 10 times"],
    ["biopattern -T 1", "print 1 second summaries with timestamps"],
    ["biopattern -d sdc", "trace sdc only"],
  ],
  flags: {
    timestamp: timestampFlag,
    disk: option("DISK", "trace this disk only", wholeDisk, { short: "d" }),
  },
  positionals: intervalPositionals,
  options: (v): Options => v,
}, {
  banner: (o) => "Tracing block device I/O requested seeks... Hit Ctrl-C to end.\n" + header(o),
  build: (o) => [completeProgram(o).build()],
  prepare: () => new DiskNames(),
  read: readCounts,
  text: formatText,
  json: (rows) => ({
    disks: rows.map((r) => ({
      disk: r.disk,
      dev: devString(r.dev),
      random: r.random,
      sequential: r.sequential,
      count: r.random + r.sequential,
      bytes: r.bytes,
    })),
  }),
  ownHeading: true,
});

if (import.meta.main) await tool.main();
