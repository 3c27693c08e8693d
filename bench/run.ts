/**
 * `deno task bench`: our runqlat against libbpf-tools runqlat and bpftrace,
 * side by side in one run, on this machine.
 *
 * 1. Start to ready and peak RSS: each tool started and timed by
 *    bench/startup.ts, rounds interleaved (order rotated every round), after
 *    one unrecorded warm-up start per tool; warm (page cache as the previous
 *    start left it), then cold (page cache dropped before every start).
 * 2. In-kernel cost per event: one tool at a time under the same
 *    `stress-ng --switch 2 -t 3` load, run time / run count of its wakeup and
 *    switch programs from bpf_stats, plus their translated instruction counts.
 *
 * Prints Markdown tables (medians, ratios ours / reference) and, last, one
 * JSON line with every per-round number. Needs root.
 *
 *     deno task bench [--rounds 9] [--cost-rounds 3] [--stress-seconds 3]
 */
import { dirname } from "node:path";
import { parseArgs } from "node:util";
import { readStatsEnabled, writeStatsEnabled } from "./bpftool.ts";
import { killAllChildren } from "./children.ts";
import { type EventCostSample, measureEventCost, type ProgramCost } from "./event_cost.ts";
import { describeMachine, machineLine } from "./machine.ts";
import { measureStartup, type StartupSample } from "./startup.ts";
import { findSubjects, firstLine, type Subject, type SubjectKey, which } from "./subjects.ts";
import { markdownTable, type Measure, type Outcome, outcomeOf } from "./table.ts";
import { keepResult } from "./results.ts";

const USAGE = `usage: deno task bench [--rounds N] [--cost-rounds N] [--stress-seconds S]

  --rounds N          start-to-ready rounds per tool (default 9, at least 7 recommended)
  --cost-rounds N     loaded runs per tool for ns/event (default 3; 0: start-up only)
  --stress-seconds S  length of each stress-ng --switch load (default 3)`;

/** A sample tagged with the round it was taken in. */
type Round<T> = T & { round: number };

const startedAt = performance.now();

function log(message: string): void {
  const seconds = ((performance.now() - startedAt) / 1000).toFixed(1);
  console.error(`bench [${seconds} s]: ${message}`);
}

/** Rotates `items` left by `by`, so no tool always goes first. */
function rotate<T>(items: T[], by: number): T[] {
  if (items.length === 0) return items;
  const k = by % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

function positiveInt(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) {
    throw new Error(`${flag} wants a positive integer, not ${text}`);
  }
  return n;
}

/** Finds stress-ng, installing it with apt-get when it is missing (as the CI does). */
async function findStressNg(): Promise<string | null> {
  const found = await which("stress-ng");
  if (found) return found;
  const apt = await which("apt-get");
  if (!apt) return null;
  log("stress-ng is missing: apt-get install -y stress-ng");
  await new Deno.Command(apt, {
    args: ["install", "-y", "-qq", "stress-ng"],
    env: { DEBIAN_FRONTEND: "noninteractive" },
    stdin: "null",
    stdout: "null",
  }).output();
  return await which("stress-ng");
}

async function startupRounds(
  subjects: Subject[],
  rounds: number,
  repoRoot: string,
  cold: boolean,
): Promise<{ samples: Map<SubjectKey, Round<StartupSample>[]>; problem?: string }> {
  const samples = new Map<SubjectKey, Round<StartupSample>[]>(subjects.map((s) => [s.key, []]));
  const runnable = subjects.filter((s) => !s.missing);
  const how = cold ? "cold" : "warm";
  if (!cold) {
    for (const subject of runnable) {
      log(`warm-up start of ${subject.label}`);
      await measureStartup(subject, repoRoot);
    }
  }
  for (let round = 1; round <= rounds; round++) {
    const line: string[] = [];
    for (const subject of rotate(runnable, round - 1)) {
      const sample = await measureStartup(subject, repoRoot, cold);
      samples.get(subject.key)!.push({ round, ...sample });
      line.push(`${subject.key} ${sample.readyMs?.toFixed(1) ?? "failed"} ms`);
    }
    log(`${how} start-to-ready round ${round}/${rounds}: ${line.join(", ")}`);
  }
  return { samples };
}

async function eventCostRounds(
  subjects: Subject[],
  rounds: number,
  stressSeconds: number,
  repoRoot: string,
): Promise<{ samples: Map<SubjectKey, Round<EventCostSample>[]>; problem?: string }> {
  const samples = new Map<SubjectKey, Round<EventCostSample>[]>(subjects.map((s) => [s.key, []]));
  if (rounds === 0) return { samples, problem: "skipped (--cost-rounds 0)" };
  const bpftool = (await which("bpftool")) ??
    ((await exists("/usr/sbin/bpftool")) ? "/usr/sbin/bpftool" : null);
  if (!bpftool) return { samples, problem: "bpftool not found" };
  const stressNg = await findStressNg();
  if (!stressNg) return { samples, problem: "stress-ng not found (apt-get install stress-ng)" };
  const setup = {
    bpftool,
    stressArgv: [stressNg, "--switch", "2", "-t", String(stressSeconds)],
    cwd: repoRoot,
  };
  const runnable = subjects.filter((s) => !s.missing);
  for (let round = 1; round <= rounds; round++) {
    const line: string[] = [];
    for (const subject of rotate(runnable, round - 1)) {
      const sample = await measureEventCost(subject, setup);
      samples.get(subject.key)!.push({ round, ...sample });
      const switchCost = sample.programs.find((p) => p.tracepoint === "sched_switch")?.nsPerEvent;
      line.push(`${subject.key} switch ${switchCost?.toFixed(0) ?? "failed"} ns`);
      if (sample.error) log(`${subject.key}: ${sample.error}`);
    }
    log(`ns/event round ${round}/${rounds}: ${line.join(", ")}`);
  }
  return { samples };
}

/** Per-tool outcome of one number taken from each successful sample. */
function collect<T extends { error?: string }>(
  subjects: Subject[],
  samples: Map<SubjectKey, T[]>,
  problem: string | undefined,
  pick: (sample: T) => number | null | undefined,
): Map<SubjectKey, Outcome> {
  const results = new Map<SubjectKey, Outcome>();
  for (const subject of subjects) {
    const own = samples.get(subject.key) ?? [];
    const values = own.filter((s) => !s.error).map(pick).filter((v): v is number =>
      typeof v === "number"
    );
    const errors = own.map((s) => s.error).filter((e): e is string => !!e);
    results.set(subject.key, outcomeOf(values, errors, subject.missing ?? problem));
  }
  return results;
}

function programFor(sample: EventCostSample, tracepoint: string): ProgramCost | undefined {
  return sample.programs.find((p) => p.tracepoint === tracepoint);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      rounds: { type: "string", default: "9" },
      "cost-rounds": { type: "string", default: "3" },
      "stress-seconds": { type: "string", default: "3" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const rounds = positiveInt(values.rounds, "--rounds");
  const costRounds = values["cost-rounds"] === "0"
    ? 0
    : positiveInt(values["cost-rounds"], "--cost-rounds");
  const stressSeconds = positiveInt(values["stress-seconds"], "--stress-seconds");
  if (Deno.uid() !== 0) {
    log("needs root: the tools load BPF programs and the bench reads bpf_stats");
    return 1;
  }

  const repoRoot = dirname(import.meta.dirname!);
  const machine = describeMachine();
  const subjects = await findSubjects(repoRoot);
  for (const s of subjects) if (s.missing) log(`${s.label}: ${s.missing}`);

  const startup = await startupRounds(subjects, rounds, repoRoot, false);
  if (startup.problem) log(`start to ready not measured: ${startup.problem}`);
  const coldStartup = await startupRounds(subjects, rounds, repoRoot, true);
  const load = Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  log(`load average after the starts: ${load}`);

  const oldStats = readStatsEnabled();
  let cost;
  try {
    cost = await eventCostRounds(subjects, costRounds, stressSeconds, repoRoot);
  } finally {
    writeStatsEnabled(oldStats);
  }

  if (cost.problem) log(`ns per event not measured: ${cost.problem}`);
  const stressVersion = await firstLine(["stress-ng", "--version"]);
  const measures: Measure[] = [
    {
      title: `Start to "Tracing" line, warm (ms, median of ${rounds} starts)`,
      digits: 1,
      results: collect(subjects, startup.samples, startup.problem, (s) => s.readyMs),
    },
    {
      title: `Start to "Tracing" line, cold: page cache dropped (ms, median of ${rounds} starts)`,
      digits: 1,
      results: collect(subjects, coldStartup.samples, coldStartup.problem, (s) => s.readyMs),
    },
    {
      title: `Peak RSS, warm (MiB, VmHWM, median of ${rounds} starts)`,
      digits: 1,
      results: collect(subjects, startup.samples, startup.problem, (s) => s.peakRssKb / 1024),
    },
    {
      title: `Peak RSS, cold (MiB, VmHWM, median of ${rounds} starts)`,
      digits: 1,
      results: collect(
        subjects,
        coldStartup.samples,
        coldStartup.problem,
        (s) => s.peakRssKb / 1024,
      ),
    },
  ];
  for (const [tracepoint, what] of [["sched_wakeup", "wakeup"], ["sched_switch", "switch"]]) {
    measures.push({
      title: `${what} program (${tracepoint}): ns per event (median of ${costRounds} loaded runs)`,
      digits: 0,
      results: collect(
        subjects,
        cost.samples,
        cost.problem,
        (s) => programFor(s, tracepoint)?.nsPerEvent,
      ),
    });
  }
  for (const [tracepoint, what] of [["sched_wakeup", "wakeup"], ["sched_switch", "switch"]]) {
    measures.push({
      title: `${what} program (${tracepoint}): xlated instructions`,
      digits: 0,
      results: collect(
        subjects,
        cost.samples,
        cost.problem,
        (s) => programFor(s, tracepoint)?.xlatedInsns,
      ),
    });
  }

  const out: string[] = [
    "### runqlat: ours vs libbpf-tools vs bpftrace",
    "",
    machineLine(machine, [
      stressVersion?.replace(/^stress-ng, version (\S+).*/, "stress-ng $1") ?? "stress-ng unknown",
    ]),
    "",
  ];
  for (const measure of measures) out.push(markdownTable(measure, subjects), "");
  out.push(...notes(subjects, startup.samples, cost.samples, rounds, stressSeconds), "");
  console.log(out.join("\n"));
  keepResult("runqlat", {
    machine,
    config: { rounds, costRounds, stressSeconds },
    tools: Object.fromEntries(subjects.map((s) => [s.key, s.label])),
    startup: Object.fromEntries(startup.samples),
    startupCold: Object.fromEntries(coldStartup.samples),
    loadAverage: load,
    eventCost: Object.fromEntries(cost.samples),
  });
  return 0;
}

/** How the figures were taken, and anything that makes them less trustworthy. */
function notes(
  subjects: Subject[],
  startup: Map<SubjectKey, Round<StartupSample>[]>,
  cost: Map<SubjectKey, Round<EventCostSample>[]>,
  rounds: number,
  stressSeconds: number,
): string[] {
  const lines = [
    `- Start to ready: ms from spawn to the first "Tracing" line on stdout or stderr, ` +
    `timed by bench/startup.ts from the bench's own process; peak RSS is the spawned ` +
    `process's VmHWM, polled every 5 ms. ` +
    `${rounds} rounds, tool order rotated each round, after one unrecorded warm-up start ` +
    `per tool (warm); cold starts drop the page cache before each start (the program cache ` +
    `of lib/cli/program_cache.ts stays, filled by the warm-up start). ` +
    `libbpf-tools runqlat runs under \`stdbuf -oL\` (it block-buffers a pipe).`,
    `- ns per event: \`kernel.bpf_stats_enabled=1\`, one tool at a time, ` +
    `run_time_ns / run_cnt of its programs (\`bpftool -j prog show\`) over ` +
    `\`stress-ng --switch 2 -t ${stressSeconds}\`, counters read after attach and after the ` +
    `load. Instructions: bytes_xlated / 8 (a 64-bit load counts as 2).`,
    `- bpftrace runs an inline runqlat on the sched tracepoints: the packaged ` +
    `runqlat.bt includes kernel headers, which this kernel lacks.`,
  ];
  for (const subject of subjects) {
    const starts = startup.get(subject.key) ?? [];
    const deaf = starts.filter((s) => s.extraSigints > 0).length;
    if (deaf > 0) {
      lines.push(
        `- ${subject.label} ignored the SIGINT that ended ${deaf} of its ${starts.length} ` +
          `starts (the bench sent another; its start-to-ready time is unaffected).`,
      );
    }
  }
  const late = subjects.filter((s) =>
    (cost.get(s.key) ?? []).some((c) => !c.error && !c.attachedAtReady)
  );
  if (late.length > 0) {
    lines.push(
      `- Not yet attached when its "Tracing" line appeared: ${
        late.map((s) => s.label).join(", ")
      }.`,
    );
  }
  const noisy = [...cost.values()].flat().filter((c) => c.foreignPrograms.length > 0);
  if (noisy.length > 0) {
    const names = new Set(noisy.flatMap((c) => c.foreignPrograms.map((p) => p.split("#")[0])));
    lines.push(
      `- Other BPF programs ran during ${noisy.length} of the loaded runs ` +
        `(${[...names].slice(0, 6).join(", ")}${names.size > 6 ? ", ..." : ""}); ` +
        `ns/event may be noisier.`,
    );
  }
  return lines;
}

let statsToRestore: string | null = null;

function cleanUpAndExit(code: number): never {
  killAllChildren();
  if (statsToRestore !== null) writeStatsEnabled(statsToRestore);
  Deno.exit(code);
}

if (import.meta.main) {
  try {
    statsToRestore = Deno.uid() === 0 ? readStatsEnabled() : null;
  } catch {
    statsToRestore = null;
  }
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM", "SIGHUP"];
  const onSignal = () => {
    log("interrupted: killing the tools and restoring kernel.bpf_stats_enabled");
    cleanUpAndExit(130);
  };
  for (const s of signals) Deno.addSignalListener(s, onSignal);
  let code = 1;
  try {
    code = await main();
  } catch (error) {
    log(error instanceof Error ? error.message : String(error));
  } finally {
    for (const s of signals) Deno.removeSignalListener(s, onSignal);
    killAllChildren();
    if (statsToRestore !== null) writeStatsEnabled(statsToRestore);
  }
  Deno.exit(code);
}
