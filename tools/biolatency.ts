#!/usr/bin/env -S deno run -A
/**
 * biolatency: summarize block device I/O latency as a histogram: the time
 * from a request being issued to the device (or, with -Q, from it being
 * queued in the OS) to its completion.
 *
 * Events: block_rq_issue, block_rq_complete (and block_rq_insert with -Q), as
 * BTF-typed tracepoints; start times are keyed by the request pointer. Output
 * and flags follow libbpf-tools biolatency. The seed talk's spelling
 * `biolateness` (tools/biolateness.ts) runs this same tool.
 *
 *     # deno run -A tools/biolatency.ts -D 1 1
 *     Tracing block device I/O... Hit Ctrl-C to end.
 *
 *     disk = vda
 *          usecs               : count    distribution
 *              0 -> 1          : 0        |                                        |
 *              2 -> 3          : 0        |                                        |
 *              4 -> 7          : 0        |                                        |
 *              8 -> 15         : 0        |                                        |
 *             16 -> 31         : 2        |*****                                   |
 *             32 -> 63         : 15       |****************************************|
 *             64 -> 127        : 7        |******************                      |
 *
 * Differences from libbpf-tools: -F names I/O operations and flags from the
 * running kernel's BTF (`enum req_op`, `enum req_flag_bits`), where the C tool
 * has a table of Linux 5.x values; -c filters where a request is queued or
 * issued (the completion runs in whatever context finishes the I/O); -d takes
 * only whole disks (a partition is a usage error, where the C tool silently
 * matches nothing).
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import { Btf } from "../lib/btf/btf.ts";
import {
  histogramTool,
  type IntervalOptions,
  intervalPositionals,
  timestampFlag,
} from "../lib/cli/drivers/interval.ts";
import { cgroupPath, cgroupV2Root, flag, option, wholeDisk } from "../lib/cli/flags.ts";
import { drainHistograms } from "../lib/cli/hist_maps.ts";
import type { Session } from "../lib/cli/session.ts";
import { requestDiskDev, skipUnlessDisk } from "../lib/dsl/block_request.ts";
import { cgroupMap, skipUnlessInCgroup } from "../lib/dsl/cgroup.ts";
import { defineHistMap } from "../lib/dsl/hist.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import { type Probe, tpBtf } from "../lib/dsl/program.ts";
import { r1, r10, r2, r7, r8, r9 } from "../lib/dsl/registers.ts";
import { defineSchema } from "../lib/dsl/schema.ts";
import { formatLog2Hist } from "../lib/format/log2_hist.ts";
import { setCgroup } from "../lib/kernel/map.ts";
import { type BlockDevice, devString, DiskNames } from "../lib/symbols/disks.ts";

const MAX_SLOTS = 27;
const MAX_ENTRIES = 10240;

/** What the operator asked for. */
interface Options extends IntervalOptions {
  milliseconds: boolean;
  /** Measure from block_rq_insert (queued in the OS) instead of block_rq_issue. */
  queued: boolean;
  /** -D: a histogram per disk. */
  disks: boolean;
  /** -F: a histogram per set of I/O flags. */
  flag: boolean;
  /** -d: the one disk to trace. */
  disk?: BlockDevice;
  /** -c: a cgroup v2 directory; only I/O started by its tasks counts. */
  cgroup?: string;
}

// --- BPF side ---------------------------------------------------------------

/** When each request started (issue, or insert with -Q), by request pointer. */
const start = defineMap({
  name: "start",
  type: "hash",
  keySize: 8,
  valueSize: 8,
  maxEntries: MAX_ENTRIES,
});
/** One global histogram: per-CPU u64 counters, no hashing, no atomics. */
const hist = defineHistMap({ name: "hist", slots: MAX_SLOTS, perCpu: true });
/** The key of `hists` (-F, -D): what is not asked for is 0. */
const histKey = defineSchema("hist_key", { cmd_flags: "u32", dev: "u32" });
/** Histograms per {cmd_flags, dev}: u32 slots[MAX_SLOTS]. */
const hists = defineHistMap({ name: "hists", slots: MAX_SLOTS, keySize: histKey.size });

const keyedHists = (o: Options) => o.disks || o.flag;
/** The same with a running sum of the nanoseconds (--prometheus: the exported _sum). */
const histSum = defineHistMap({ name: "hist", slots: MAX_SLOTS, perCpu: true, sum: true });
const histsSum = defineHistMap({
  name: "hists",
  slots: MAX_SLOTS,
  keySize: histKey.size,
  sum: true,
});
/** The global and keyed histogram maps these options fill. */
const histMaps = (o: Options) => o.prometheus ? [histSum, histsSum] : [hist, hists];

/** Records "request started now" on insert or issue, unless filtered out. */
function startProgram(event: "block_rq_insert" | "block_rq_issue", o: Options): Probe {
  const p = tpBtf(event, { name: `biolat_${event.slice("block_rq_".length)}` });
  const done = p.label();
  if (o.cgroup !== undefined) skipUnlessInCgroup(p, done);
  p.ctx(r7, "rq");
  if (event === "block_rq_issue" && o.queued) {
    // Behind an I/O scheduler every request is inserted first: keep that time.
    p.field(r1, r7, "request", "q->elevator").jumpIf(r1, "!=", 0, done);
  }
  if (o.disk) skipUnlessDisk(p, r7, o.disk, done);
  const key = p.stack(8);
  p.store("u64", r10, key, r7).startTimer(start, key);
  p.bind(done);
  return p.ret(0);
}

/** On completion: latency since the recorded start, into its histogram. */
function completeProgram(o: Options): Probe {
  const p = tpBtf("block_rq_complete", { name: "biolat_complete" });
  const key = p.stack(8), cleanup = p.label(), out = p.label();
  p.ctx(r7, "rq").store("u64", r10, key, r7);
  p.elapsed(r8, start, key, out, cleanup);
  const ns = o.prometheus ? p.stack(8) : undefined;
  if (ns !== undefined) p.store("u64", r10, ns, r8);
  p.div(r8, o.milliseconds ? 1_000_000 : 1000);
  p.log2(r9, r8, r1).clamp(r9, MAX_SLOTS - 1);

  const hkey = p.stack(histKey.size);
  const [hist, hists] = histMaps(o);
  if (!keyedHists(o)) {
    p.store("u32", r10, hkey, 0).histAdd(hist, hkey, r9, { sum: ns });
  } else {
    if (o.flag) p.field(r1, r7, "request", "cmd_flags");
    p.store("u32", r10, hkey + histKey.offset("cmd_flags"), o.flag ? r1 : 0);
    if (o.disks) requestDiskDev(p, r1, r7, r2);
    p.store("u32", r10, hkey + histKey.offset("dev"), o.disks ? r1 : 0);
    p.histAdd(hists, hkey, r9, { zeroOff: p.stack(hists.valueSize), sum: ns });
  }
  p.bind(cleanup).delete(start, key);
  p.bind(out);
  return p.ret(0);
}

function buildPrograms(o: Options) {
  return [
    ...(o.queued ? [startProgram("block_rq_insert", o)] : []),
    startProgram("block_rq_issue", o),
    completeProgram(o),
  ].map((p) => p.build());
}

// --- user side --------------------------------------------------------------

/** Labels for -D and -F headings, computed once per run (not for --dump). */
interface Labels {
  disks?: DiskNames;
  flags?: RequestFlagNames;
}

function readHistograms(session: Session, o: Options, labels: Labels) {
  const unit = o.milliseconds ? "msecs" : "usecs";
  const [hist, hists] = histMaps(o);
  const sumOf = (h: { sum?: number }) => h.sum === undefined ? {} : { sum: h.sum / 1e9 }; // ns -> s
  if (!keyedHists(o)) {
    const [h] = drainHistograms(session.maps.get(hist)!, hist);
    // An empty global histogram prints nothing, as the C tool's empty hash map.
    return {
      unit,
      // (exporting: the series exists from the first scrape, so increase() sees the first I/O)
      histograms: h.slots.some((n) => n > 0) || o.prometheus
        ? [{ slots: h.slots, ...sumOf(h) }]
        : [],
    };
  }
  const histograms = drainHistograms(session.maps.get(hists)!, hists).map((h) => {
    const { cmd_flags, dev } = histKey.decode(h.key);
    const disk = o.disks ? labels.disks!.nameOf(dev) ?? "Unknown" : undefined;
    const flags = o.flag ? labels.flags!.format(cmd_flags) : undefined;
    // libbpf-tools: "\ndisk = %s\t" with -D, the flags with -F, then "\n"
    const heading = (o.disks ? `\ndisk = ${disk}\t` : "") + (o.flag ? `flags = ${flags}` : "");
    const labelsJson = {
      ...(o.disks ? { disk: disk!, dev: devString(dev) } : {}),
      ...(o.flag ? { flags: flags!, cmd_flags } : {}),
    };
    return { heading, labels: labelsJson, slots: h.slots, ...sumOf(h) };
  });
  return { unit, histograms };
}

/**
 * Names for `cmd_flags` as libbpf-tools prints them ("Sync-Write"): the flags
 * it knows, in its order, then the operation; bit numbers and operation codes
 * come from the running kernel's BTF, which has moved them over the years.
 */
class RequestFlagNames {
  static readonly #FLAGS: [string, string, number][] = [
    // [enumerator, printed, bit in Linux 5.x-6.x when BTF lacks the enum]
    ["__REQ_NOWAIT", "NoWait-", 21],
    ["__REQ_BACKGROUND", "Background-", 20],
    ["__REQ_RAHEAD", "ReadAhead-", 19],
    ["__REQ_PREFLUSH", "PreFlush-", 18],
    ["__REQ_FUA", "FUA-", 17],
    ["__REQ_INTEGRITY", "Integrity-", 16],
    ["__REQ_IDLE", "Idle-", 15],
    ["__REQ_NOMERGE", "NoMerge-", 14],
    ["__REQ_PRIO", "Priority-", 13],
    ["__REQ_META", "Metadata-", 12],
    ["__REQ_SYNC", "Sync-", 11],
  ];
  static readonly #OP_MASK = 0xff;
  readonly #flags: [number, string][];
  readonly #ops = new Map<number, string>();

  constructor(btf: Btf) {
    this.#flags = RequestFlagNames.#FLAGS.map(([enumerator, text, fallback]) => {
      let bit = fallback;
      try {
        bit = Number(btf.enumValue("req_flag_bits", enumerator));
      } catch { /* older or stripped BTF: the 5.x-6.x numbering */ }
      return [2 ** bit, text];
    });
    for (const enumName of ["req_op", "req_opf"]) {
      const id = btf.findId(enumName, "ENUM");
      const t = id === undefined ? undefined : btf.type(id);
      if (t?.kind !== "ENUM") continue;
      for (const v of t.values) {
        if (!v.name.startsWith("REQ_OP_") || v.name === "REQ_OP_LAST") continue;
        this.#ops.set(Number(v.value), camelCase(v.name.slice("REQ_OP_".length)));
      }
      break;
    }
    if (this.#ops.size === 0) {
      for (const [op, name] of [[0, "Read"], [1, "Write"], [2, "Flush"], [3, "Discard"]] as const) {
        this.#ops.set(op, name);
      }
    }
  }

  /** "NoWait-Sync-Write", as libbpf-tools' print_cmd_flags. */
  format(cmdFlags: number): string {
    const flags = this.#flags.filter(([mask]) => (cmdFlags & mask) !== 0).map(([, t]) => t);
    return flags.join("") + (this.#ops.get(cmdFlags & RequestFlagNames.#OP_MASK) ?? "Unknown");
  }
}

/** "SECURE_ERASE" -> "SecureErase", the spelling of libbpf-tools' op table. */
function camelCase(name: string): string {
  return name.split("_").map((w) => w[0] + w.slice(1).toLowerCase()).join("");
}

export const tool = histogramTool({
  name: "biolatency",
  summary: "Summarize block device I/O latency as a histogram.",
  examples: [
    ["biolatency", "summarize block I/O latency as a histogram"],
    ["biolatency 1 10", "print 1 second summaries, 10 times"],
    ["biolatency -mT 1", "1s summaries, milliseconds, and timestamps"],
    ["biolatency -Q", "include OS queued time in I/O time"],
    ["biolatency -D", "show each disk device separately"],
    ["biolatency -F", "show I/O flags separately"],
    ["biolatency -d sdc", "trace sdc only"],
    ["biolatency -c CG", "trace processes under cgroup v2 path CG"],
  ],
  flags: {
    timestamp: timestampFlag,
    milliseconds: flag("millisecond histogram", "m"),
    queued: flag("include OS queued time in I/O time", "Q"),
    disks: flag("print a histogram per disk device", "D"),
    flag: flag("print a histogram per set of I/O flags", "F"),
    disk: option("DISK", "trace this disk only", wholeDisk, { short: "d" }),
    cgroup: option("CG", "trace processes in this cgroup v2 path only", cgroupPath, { short: "c" }),
  },
  positionals: intervalPositionals,
  variants: [["-Q"], ["-D"], ["-F"], ["-m", "-Q", "-D", "-F"], ["-c", cgroupV2Root()]],
  options: (v): Options => v,
}, {
  banner: () => "Tracing block device I/O... Hit Ctrl-C to end.",
  build: buildPrograms,
  prepare: (o): Labels => ({
    disks: o.disks ? new DiskNames() : undefined,
    flags: o.flag ? new RequestFlagNames(Btf.vmlinux()) : undefined,
  }),
  initMaps: (o, maps) => o.cgroup !== undefined && setCgroup(maps.get(cgroupMap)!, o.cgroup),
  read: readHistograms,
  text: (set) =>
    set.histograms.map((h) => `${h.heading ?? ""}\n${formatLog2Hist(h.slots, set.unit)}`).join(""),
});

if (import.meta.main) await tool.main();
