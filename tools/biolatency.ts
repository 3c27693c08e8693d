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
// the modules it uses. --dump code is imported on demand.
import { Btf } from "../lib/btf/btf.ts";
import { intervalCount, parseToolArgs } from "../lib/cli/args.ts";
import { drainHistograms, log2Buckets } from "../lib/cli/hist_maps.ts";
import { writeOut } from "../lib/cli/output.ts";
import { runTool } from "../lib/cli/run.ts";
import { loadAndAttach, type Session } from "../lib/cli/session.ts";
import { intervals, StopSignal } from "../lib/cli/stop.ts";
import { formatHelp, UsageError } from "../lib/cli/usage.ts";
import { requestDiskDev, skipUnlessDisk } from "../lib/dsl/block_request.ts";
import { defineHistMap } from "../lib/dsl/hist.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import { type Probe, tpBtf } from "../lib/dsl/program.ts";
import { r0, r1, r10, r2, r7, r8, r9 } from "../lib/dsl/registers.ts";
import { formatLog2Hist } from "../lib/format/log2_hist.ts";
import { formatTimeOfDay } from "../lib/format/time.ts";
import { setCgroup } from "../lib/kernel/map.ts";
import { type BlockDevice, devString, diskByName, DiskNames } from "../lib/symbols/disks.ts";

const MAX_SLOTS = 27;
const MAX_ENTRIES = 10240;

function help(name: string) {
  return {
    name,
    summary: "Summarize block device I/O latency as a histogram.",
    usage: `${name} [-h] [-T] [-m] [-Q] [-D] [-F] [-d DISK] [-c CG] [interval] [count]`,
    examples: [
      [name, "summarize block I/O latency as a histogram"],
      [`${name} 1 10`, "print 1 second summaries, 10 times"],
      [`${name} -mT 1`, "1s summaries, milliseconds, and timestamps"],
      [`${name} -Q`, "include OS queued time in I/O time"],
      [`${name} -D`, "show each disk device separately"],
      [`${name} -F`, "show I/O flags separately"],
      [`${name} -d sdc`, "trace sdc only"],
      [`${name} -c CG`, "trace processes under cgroup v2 path CG"],
    ] as [string, string][],
    flags: [
      { flags: "-T, --timestamp", help: "include timestamp on output" },
      { flags: "-m, --milliseconds", help: "millisecond histogram" },
      { flags: "-Q, --queued", help: "include OS queued time in I/O time" },
      { flags: "-D, --disks", help: "print a histogram per disk device" },
      { flags: "-F, --flag", help: "print a histogram per set of I/O flags" },
      { flags: "-d, --disk DISK", help: "trace this disk only" },
      { flags: "-c, --cgroup CG", help: "trace processes in this cgroup v2 path only" },
    ],
  };
}

/** What the operator asked for. */
interface Options {
  milliseconds: boolean;
  /** Measure from block_rq_insert (queued in the OS) instead of block_rq_issue. */
  queued: boolean;
  perDisk: boolean;
  perFlag: boolean;
  /** -d: the one disk to trace. */
  disk?: BlockDevice;
  /** -c: a cgroup v2 directory; only I/O started by its tasks counts. */
  cgroup?: string;
}

function parseOptions(argv: string[]) {
  const { values, positionals } = parseToolArgs(argv, {
    timestamp: { type: "boolean", short: "T" },
    milliseconds: { type: "boolean", short: "m" },
    queued: { type: "boolean", short: "Q" },
    disks: { type: "boolean", short: "D" },
    flag: { type: "boolean", short: "F" },
    disk: { type: "string", short: "d" },
    cgroup: { type: "string", short: "c" },
  });
  const opts: Options = {
    milliseconds: !!values.milliseconds,
    queued: !!values.queued,
    perDisk: !!values.disks,
    perFlag: !!values.flag,
    disk: values.disk === undefined ? undefined : wholeDisk(values.disk),
    cgroup: values.cgroup,
  };
  return { values, opts, ...intervalCount(positionals) };
}

/** -d DISK: a whole disk that exists (the BPF side compares gendisk numbers). */
function wholeDisk(name: string): BlockDevice {
  const disk = diskByName(name);
  if (!disk) throw new UsageError(`no such disk: '${name}'`);
  if (disk.isPartition) throw new UsageError(`'${name}' is a partition: give its whole disk`);
  return disk;
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
/** Histograms per {u32 cmd_flags, u32 dev} (-F, -D): u32 slots[MAX_SLOTS]. */
const hists = defineHistMap({ name: "hists", slots: MAX_SLOTS, keySize: 8 });
/** The cgroup for -c, in slot 0. */
const cgroupMap = defineMap({
  name: "cgroup_map",
  type: "cgroup_array",
  keySize: 4,
  valueSize: 4,
  maxEntries: 1,
});

const keyedHists = (o: Options) => o.perDisk || o.perFlag;

/** Records "request started now" on insert or issue, unless filtered out. */
function startProgram(event: "block_rq_insert" | "block_rq_issue", o: Options): Probe {
  const p = tpBtf(event, { name: `biolat_${event.slice("block_rq_".length)}` });
  const done = p.label();
  if (o.cgroup !== undefined) {
    p.loadMap(r1, cgroupMap).mov(r2, 0).call("current_task_under_cgroup").jumpIf(r0, "==", 0, done);
  }
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
  p.div(r8, o.milliseconds ? 1_000_000 : 1000);
  p.log2(r9, r8, r1).clamp(r9, MAX_SLOTS - 1);

  const hkey = p.stack(8);
  if (!keyedHists(o)) {
    p.store("u32", r10, hkey, 0).histAdd(hist, hkey, r9);
  } else {
    if (o.perFlag) p.field(r1, r7, "request", "cmd_flags").store("u32", r10, hkey, r1);
    else p.store("u32", r10, hkey, 0);
    if (o.perDisk) requestDiskDev(p, r1, r7, r2).store("u32", r10, hkey + 4, r1);
    else p.store("u32", r10, hkey + 4, 0);
    p.histAdd(hists, hkey, r9, { zeroOff: p.stack(hists.valueSize) });
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

/** One histogram as read from the kernel. */
interface Histogram {
  cmdFlags?: number;
  dev?: number;
  slots: number[];
}

function readHistograms(session: Session, o: Options): Histogram[] {
  if (!keyedHists(o)) {
    const [h] = drainHistograms(session.maps.get(hist)!, hist);
    // An empty global histogram prints nothing, as the C tool's empty hash map.
    return h.slots.some((n) => n > 0) ? [{ slots: h.slots }] : [];
  }
  return drainHistograms(session.maps.get(hists)!, hists).map((h) => {
    const key = new DataView(h.key.buffer);
    return {
      cmdFlags: o.perFlag ? key.getUint32(0, true) : undefined,
      dev: o.perDisk ? key.getUint32(4, true) : undefined,
      slots: h.slots,
    };
  });
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

/** Labels for -D and -F headings, computed once per tool run. */
interface Labels {
  disks?: DiskNames;
  flags?: RequestFlagNames;
}

function formatText(hs: Histogram[], o: Options, labels: Labels, unit: string): string {
  return hs.map((h) => {
    let head = "";
    if (o.perDisk) head += `\ndisk = ${labels.disks!.nameOf(h.dev!) ?? "Unknown"}\t`;
    if (o.perFlag) head += `flags = ${labels.flags!.format(h.cmdFlags!)}`;
    return `${head}\n${formatLog2Hist(h.slots, unit)}`;
  }).join("");
}

function formatJson(hs: Histogram[], o: Options, labels: Labels, unit: string): string {
  return JSON.stringify({
    time: new Date().toISOString(),
    unit,
    histograms: hs.map((h) => ({
      ...(o.perDisk
        ? { disk: labels.disks!.nameOf(h.dev!) ?? "Unknown", dev: devString(h.dev!) }
        : {}),
      ...(o.perFlag ? { flags: labels.flags!.format(h.cmdFlags!), cmd_flags: h.cmdFlags } : {}),
      buckets: log2Buckets(h.slots),
    })),
  }) + "\n";
}

/** Runs biolatency under the name it was called by (`biolatency` or `biolateness`). */
export async function runBiolatency(name: string, argv: string[] = Deno.args): Promise<never> {
  return await runTool(name, async () => {
    const { values, opts, interval, count } = parseOptions(argv);
    if (values.help) return writeOut(formatHelp(help(name)));
    const programs = buildPrograms(opts);
    if (values.dump) return writeOut((await import("../lib/cli/dump.ts")).dumpPrograms(programs));

    const labels: Labels = {
      disks: opts.perDisk ? new DiskNames() : undefined,
      flags: opts.perFlag ? new RequestFlagNames(Btf.vmlinux()) : undefined,
    };
    const session = loadAndAttach(programs, {
      verbose: values.verbose,
      initMaps: (maps) => opts.cgroup !== undefined && setCgroup(maps.get(cgroupMap)!, opts.cgroup),
    });
    const stop = new StopSignal();
    const unit = opts.milliseconds ? "msecs" : "usecs";
    if (!values.json) writeOut("Tracing block device I/O... Hit Ctrl-C to end.\n");
    try {
      for await (const _ of intervals(stop, interval, count)) {
        const hs = readHistograms(session, opts);
        if (values.json) {
          writeOut(formatJson(hs, opts, labels, unit));
          continue;
        }
        writeOut("\n" + (values.timestamp ? `${formatTimeOfDay(new Date()).padEnd(8)}\n` : ""));
        writeOut(formatText(hs, opts, labels, unit));
      }
    } finally {
      stop.dispose();
    }
  });
}

if (import.meta.main) await runBiolatency("biolatency");
