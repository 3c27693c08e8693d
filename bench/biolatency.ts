/**
 * Benchmark: our biolatency against libbpf-tools biolatency, side by side on
 * this machine.
 *
 * 1. Start to ready and peak RSS: each tool started and timed by
 *    bench/startup.ts, rounds interleaved, order alternating, after one
 *    unrecorded warm-up start of each.
 * 2. In-kernel ns per event: both tools attached at once (which one attaches
 *    first alternates by round), under one I/O load (4 KiB O_DIRECT writes with dd, in a loop, on a loop device made
 *    here with direct I/O to its backing file, so every write is one request
 *    on the loop device and one on the disk below). The run time and run
 *    count bpf_stats (kernel.bpf_stats_enabled=1) counted for each of the
 *    tool's programs during the load, from `bpftool -j prog show`; the tool's
 *    programs are those its pid attached (`bpftool -j perf show`).
 *
 * Prints a Markdown table (medians, ratio ours / libbpf-tools) on stdout,
 * progress on stderr, then one JSON line with every sample. Needs root.
 *
 *     deno run -A bench/biolatency.ts [--rounds 7] [--cost-rounds 4] [--io-seconds 3]
 */
import { measureStartup } from "./startup.ts";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { keepResult } from "./results.ts";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const READY = /Tracing block device I\/O/;
const REFERENCE = "/usr/sbin/biolatency";

/** A tool under test: how to start it. */
interface Subject {
  key: "ours" | "libbpf";
  label: string;
  argv: string[];
}

const SUBJECTS: Subject[] = [
  { key: "ours", label: "ours (Deno)", argv: ["deno", "run", "-A", `${REPO}/tools/biolatency.ts`] },
  // stdbuf: the C tool's "Tracing" line must not sit in a pipe buffer.
  { key: "libbpf", label: "libbpf-tools", argv: ["stdbuf", "-oL", REFERENCE] },
];

function log(message: string): void {
  console.error(`bench/biolatency: ${message}`);
}

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

async function output(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdin: "null", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  return new TextDecoder().decode(out.stdout);
}

// --- start to ready ---------------------------------------------------------

interface StartSample {
  readyMs: number | null;
  peakRssKb: number;
}

/** One start, timed by bench/startup.ts (the same timer as deno task bench's runqlat). */
async function measureStart(subject: Subject): Promise<StartSample> {
  const sample = await measureStartup(
    { key: "ours", label: subject.label, argv: subject.argv, ready: READY },
    REPO,
  );
  return { readyMs: sample.readyMs, peakRssKb: sample.peakRssKb };
}

// --- in-kernel cost ---------------------------------------------------------

interface ProgInfo {
  id: number;
  name: string;
  run_time_ns?: number;
  run_cnt?: number;
  bytes_xlated?: number;
}

/** One program's share of one loaded run. */
interface ProgramCost {
  event: string;
  name: string;
  runs: number;
  runTimeNs: number;
  xlatedInsns: number;
}

async function programs(): Promise<Map<number, ProgInfo>> {
  const list = JSON.parse(await output("bpftool", ["-j", "prog", "show"])) as ProgInfo[];
  return new Map(list.map((p) => [p.id, p]));
}

/** Program id -> event, for the programs `pid` attached. */
async function attachedBy(pid: number): Promise<Map<number, string>> {
  const list = JSON.parse(await output("bpftool", ["-j", "perf", "show"])) as {
    pid: number;
    prog_id: number;
    tracepoint?: string;
  }[];
  return new Map(list.filter((a) => a.pid === pid).map((a) => [a.prog_id, a.tracepoint ?? "?"]));
}

/** The I/O load: `seconds` of 4 KiB O_DIRECT writes to `device`, by dd in a loop. */
async function ioLoad(device: string, seconds: number): Promise<void> {
  const script = `end=$((SECONDS + ${seconds})); while [ $SECONDS -lt $end ]; do ` +
    `dd if=/dev/zero of=${device} bs=4k count=1024 oflag=direct status=none; done`;
  await output("bash", ["-c", script]);
}

/** A tool started and attached; `stop()` ends it. */
async function startAttached(subject: Subject) {
  const child = new Deno.Command(subject.argv[0], {
    args: subject.argv.slice(1),
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const stop = async () => {
    try {
      child.kill("SIGINT");
    } catch { /* already gone */ }
    await reader.cancel().catch(() => {});
    await child.status;
  };
  try {
    let text = "";
    while (!READY.test(text)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`${subject.label} exited before tracing`);
      text += value;
    }
    const programs = await attachedBy(child.pid);
    if (programs.size === 0) throw new Error(`${subject.label}: no attached programs found`);
    return { programs, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/**
 * One loaded round: both tools attached at once (so both see exactly the
 * same events on a shared, noisy machine), `first` attached first (its
 * programs run first on each event), then the load.
 */
async function measureCosts(first: Subject[], device: string, seconds: number) {
  const running: Awaited<ReturnType<typeof startAttached>>[] = [];
  try {
    for (const s of first) running.push(await startAttached(s));
    Deno.writeTextFileSync("/proc/sys/kernel/bpf_stats_enabled", "1\n"); // others may reset it
    const before = await programs();
    await ioLoad(device, seconds);
    const after = await programs();
    return running.map((r) =>
      [...r.programs].map(([id, event]): ProgramCost => {
        const a = after.get(id), b = before.get(id);
        return {
          event,
          name: a?.name ?? "?",
          runs: (a?.run_cnt ?? 0) - (b?.run_cnt ?? 0),
          runTimeNs: (a?.run_time_ns ?? 0) - (b?.run_time_ns ?? 0),
          xlatedInsns: Math.round((a?.bytes_xlated ?? 0) / 8),
        };
      })
    );
  } finally {
    for (const r of running) await r.stop();
  }
}

// --- the table ----------------------------------------------------------------

function row(title: string, ours: number | null, ref: number | null, digits: number): string {
  const cell = (v: number | null) => (v === null ? "n/a" : v.toFixed(digits));
  const ratio = ours !== null && ref ? `${(ours / ref).toFixed(2)}×` : "n/a";
  return `| ${title} | ${cell(ours)} | ${cell(ref)} | ${ratio} |`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      rounds: { type: "string", default: "7" },
      "cost-rounds": { type: "string", default: "4" },
      "io-seconds": { type: "string", default: "3" },
    },
  });
  const rounds = Number(values.rounds), costRounds = Number(values["cost-rounds"]);
  const ioSeconds = Number(values["io-seconds"]);
  for (const [flag, n] of [["--rounds", rounds], ["--cost-rounds", costRounds]] as const) {
    if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} wants a positive integer`);
  }
  try {
    Deno.statSync(REFERENCE);
  } catch {
    throw new Error(`${REFERENCE} is missing (apt-get install libbpf-tools)`);
  }

  log(`start to ready: 1 warm-up + ${rounds} rounds per tool`);
  const starts = new Map<Subject["key"], StartSample[]>(SUBJECTS.map((s) => [s.key, []]));
  for (const s of SUBJECTS) await measureStart(s);
  for (let round = 0; round < rounds; round++) {
    for (const s of round % 2 ? [...SUBJECTS].reverse() : SUBJECTS) {
      starts.get(s.key)!.push(await measureStart(s));
    }
  }

  log(`ns per event: ${costRounds} rounds of ${ioSeconds} s of dd oflag=direct per tool`);
  const statsWas = Deno.readTextFileSync("/proc/sys/kernel/bpf_stats_enabled").trim();
  const backing = await Deno.makeTempFile({ prefix: "bpftk-bench-", suffix: ".img" });
  await Deno.truncate(backing, 64 << 20);
  const device = (await output("losetup", ["--find", "--show", "--direct-io=on", backing])).trim();
  const costs = new Map<Subject["key"], ProgramCost[][]>(SUBJECTS.map((s) => [s.key, []]));
  try {
    for (let round = 0; round < costRounds; round++) {
      const order = round % 2 ? [...SUBJECTS].reverse() : SUBJECTS;
      const measured = await measureCosts(order, device, ioSeconds);
      order.forEach((s, i) => costs.get(s.key)!.push(measured[i]));
    }
  } finally {
    await output("losetup", ["-d", device]).catch((e) => log(String(e)));
    await Deno.remove(backing).catch(() => {});
    if (statsWas === "0") Deno.writeTextFileSync("/proc/sys/kernel/bpf_stats_enabled", "0\n");
  }

  const startMedian = (key: Subject["key"], f: (s: StartSample) => number | null) =>
    median(starts.get(key)!.map(f).filter((v): v is number => v !== null));
  /** Median over rounds of ns per run of the programs on `event` (all programs: per I/O). */
  const nsPer = (key: Subject["key"], event?: string) =>
    median(
      costs.get(key)!.map((progs) => {
        const sel = event ? progs.filter((p) => p.event === event) : progs;
        const complete = progs.filter((p) => p.event === "block_rq_complete");
        const runs = event ? sel.reduce((n, p) => n + p.runs, 0) : complete[0]?.runs ?? 0;
        return runs > 0 ? sel.reduce((n, p) => n + p.runTimeNs, 0) / runs : NaN;
      }).filter((v) => !Number.isNaN(v)),
    );
  const insns = (key: Subject["key"], event: string) =>
    costs.get(key)![0]?.find((p) => p.event === event)?.xlatedInsns ?? null;
  const runs = (key: Subject["key"]) =>
    median(costs.get(key)!.map((ps) => ps.find((p) => p.event === "block_rq_complete")?.runs ?? 0));

  const lines = [
    `#### biolatency vs libbpf-tools biolatency (${Deno.build.arch}, kernel ${Deno.osRelease()}, ${navigator.hardwareConcurrency} CPUs)`,
    "",
    "| measure (median) | ours | libbpf-tools | ratio ours / libbpf-tools |",
    "|---|---:|---:|---:|",
    row(
      "start to ready (ms)",
      startMedian("ours", (s) => s.readyMs),
      startMedian("libbpf", (s) => s.readyMs),
      0,
    ),
    row(
      "peak RSS (MB)",
      startMedian("ours", (s) => s.peakRssKb / 1024),
      startMedian("libbpf", (s) => s.peakRssKb / 1024),
      1,
    ),
    row(
      "block_rq_issue: ns per event",
      nsPer("ours", "block_rq_issue"),
      nsPer("libbpf", "block_rq_issue"),
      0,
    ),
    row(
      "block_rq_complete: ns per event",
      nsPer("ours", "block_rq_complete"),
      nsPer("libbpf", "block_rq_complete"),
      0,
    ),
    row("ns per I/O (issue + complete)", nsPer("ours"), nsPer("libbpf"), 0),
    row(
      "block_rq_issue: instructions (xlated)",
      insns("ours", "block_rq_issue"),
      insns("libbpf", "block_rq_issue"),
      0,
    ),
    row(
      "block_rq_complete: instructions (xlated)",
      insns("ours", "block_rq_complete"),
      insns("libbpf", "block_rq_complete"),
      0,
    ),
    row("I/Os per load round", runs("ours"), runs("libbpf"), 0),
  ];
  console.log(lines.join("\n"));
  keepResult("biolatency", {
    starts: Object.fromEntries(starts),
    costs: Object.fromEntries(costs),
  });
}

await main();
