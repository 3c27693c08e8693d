/**
 * In-kernel cost per event: start one tool, wait until it is attached, put
 * the same scheduler load on the machine (stress-ng --switch), and divide
 * the run time the kernel counted for each of the tool's programs by the
 * number of runs (kernel.bpf_stats_enabled must be 1).
 *
 * The tool's programs are the ones that appeared after it started and that
 * its own pid attached (bpftool perf show), so programs other people load
 * meanwhile are not mistaken for it.
 */
import {
  listPerfAttachments,
  listPrograms,
  type PerfAttachment,
  type ProgInfo,
  writeStatsEnabled,
} from "./bpftool.ts";
import { spawnTracked, stopGracefully } from "./children.ts";
import type { Subject } from "./subjects.ts";

/** Cost of one of the tool's programs under the load. */
export interface ProgramCost {
  id: number;
  name: string;
  /** Event the program is attached to, e.g. "sched_switch". */
  tracepoint: string;
  /** Runs counted during the load. */
  runs: number;
  /** Run time counted during the load. */
  runTimeNs: number;
  /** runTimeNs / runs, or null without runs. */
  nsPerEvent: number | null;
  /** Instructions after the verifier's rewrites (bytes_xlated / 8; lddw counts 2). */
  xlatedInsns: number;
}

/** One loaded-run of one tool. */
export interface EventCostSample {
  programs: ProgramCost[];
  /** Whether wakeup and switch programs were attached when the "Tracing" line appeared. */
  attachedAtReady: boolean;
  /** Other BPF programs that ran during the load: they share the CPUs. */
  foreignPrograms: string[];
  error?: string;
}

/** How to load the machine and read the kernel's counters. */
export interface EventCostSetup {
  bpftool: string;
  /** The load, e.g. ["stress-ng", "--switch", "2", "-t", "3"]. */
  stressArgv: string[];
  cwd: string;
}

/** The events every runqlat must attach to before it counts as ready. */
const REQUIRED_EVENTS = ["sched_wakeup", "sched_switch"];

/** Runs `subject` once under the load; never throws for a failing tool. */
export async function measureEventCost(
  subject: Subject,
  setup: EventCostSetup,
): Promise<EventCostSample> {
  const failed = (error: string): EventCostSample => ({
    programs: [],
    attachedAtReady: false,
    foreignPrograms: [],
    error,
  });
  // Someone else may have switched the counters off since the last round.
  writeStatsEnabled("1");
  const before = await listPrograms(setup.bpftool);
  const child = spawnTracked(subject.argv, { cwd: setup.cwd, env: subject.env, output: "piped" });
  const output = watchOutput(child, subject.ready);
  try {
    const ready = await within(output.ready, 20_000);
    if (ready === "timeout") return failed(`no "Tracing" line within 20 s`);
    if (ready === "exited") {
      const status = await child.status;
      return failed(`exited (code ${status.code}) before tracing: ${lastLine(output.text())}`);
    }
    let attached = await attachedBy(setup.bpftool, child.pid, before);
    const attachedAtReady = coversRequired(attached);
    // Not attached yet at the ready line: wait a little so the cost can still be measured.
    for (let i = 0; i < 40 && !coversRequired(attached); i++) {
      await sleep(50);
      attached = await attachedBy(setup.bpftool, child.pid, before);
    }
    if (!coversRequired(attached)) {
      const seen = attached.map((a) => a.tracepoint ?? a.fd_type).join(", ") || "nothing";
      return failed(`attached to ${seen}, not ${REQUIRED_EVENTS.join(" and ")}`);
    }
    const start = await listPrograms(setup.bpftool);
    const stress = spawnTracked(setup.stressArgv, { cwd: setup.cwd, output: "piped" });
    const stressOut = await stress.output();
    const end = await listPrograms(setup.bpftool);
    if (!stressOut.success) {
      const err = new TextDecoder().decode(stressOut.stderr).trim();
      return failed(`${setup.stressArgv.join(" ")} failed: ${lastLine(err)}`);
    }
    const mine = new Set(attached.map((a) => a.prog_id));
    const programs = attached.map((a) => costOf(a, start.get(a.prog_id), end.get(a.prog_id)));
    const sample: EventCostSample = {
      programs,
      attachedAtReady,
      foreignPrograms: othersThatRan(start, end, mine),
    };
    if (programs.every((p) => p.runs === 0)) {
      sample.error = "no runs counted: was kernel.bpf_stats_enabled switched off meanwhile?";
    }
    return sample;
  } finally {
    await stopGracefully(child, 5000);
    await output.done;
  }
}

/** Programs `pid` has attached that were not loaded before it started. */
async function attachedBy(
  bpftool: string,
  pid: number,
  before: Map<number, ProgInfo>,
): Promise<PerfAttachment[]> {
  const all = await listPerfAttachments(bpftool);
  return all.filter((a) => a.pid === pid && !before.has(a.prog_id));
}

function coversRequired(attached: PerfAttachment[]): boolean {
  return REQUIRED_EVENTS.every((tp) => attached.some((a) => a.tracepoint === tp));
}

function costOf(
  attachment: PerfAttachment,
  start: ProgInfo | undefined,
  end: ProgInfo | undefined,
): ProgramCost {
  const runs = (end?.run_cnt ?? 0) - (start?.run_cnt ?? 0);
  const runTimeNs = (end?.run_time_ns ?? 0) - (start?.run_time_ns ?? 0);
  return {
    id: attachment.prog_id,
    name: end?.name ?? start?.name ?? "?",
    tracepoint: attachment.tracepoint ?? attachment.fd_type,
    runs,
    runTimeNs,
    nsPerEvent: runs > 0 ? runTimeNs / runs : null,
    xlatedInsns: Math.round((end?.bytes_xlated ?? start?.bytes_xlated ?? 0) / 8),
  };
}

/** "name#id (N runs)" for every program not in `mine` that ran between the snapshots. */
function othersThatRan(
  start: Map<number, ProgInfo>,
  end: Map<number, ProgInfo>,
  mine: Set<number>,
): string[] {
  const ran: string[] = [];
  for (const [id, after] of end) {
    const before = start.get(id);
    if (mine.has(id) || !before) continue;
    const runs = (after.run_cnt ?? 0) - (before.run_cnt ?? 0);
    if (runs > 0) ran.push(`${after.name}#${id} (${runs} runs)`);
  }
  return ran;
}

/** Collects a child's stdout and stderr and reports when `ready` first matches. */
function watchOutput(child: Deno.ChildProcess, ready: RegExp) {
  let text = "";
  let signal: (outcome: "ready" | "exited") => void = () => {};
  const readyPromise = new Promise<"ready" | "exited">((resolve) => (signal = resolve));
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      // The ready line comes first; later output (the histogram) is not needed.
      if (text.length < 65536) text += decoder.decode(chunk, { stream: true });
      if (ready.test(text)) signal("ready");
    }
  };
  const done = Promise.all([pump(child.stdout), pump(child.stderr)]).then(() => signal("exited"));
  return { ready: readyPromise, done, text: () => text };
}

function lastLine(text: string): string {
  return text.trim().split("\n").pop() ?? "";
}

/** `promise`'s value, or "timeout" after `ms` (the timer is cleared either way). */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | "timeout"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
