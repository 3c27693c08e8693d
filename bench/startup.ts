/**
 * Start to ready: milliseconds from spawning a tool to its "Tracing" line,
 * and its peak RSS, as measured by the shared ready.mjs (Node), so every
 * tool is timed by the same outside observer.
 */
import { childrenOf, killGroup, spawnTracked } from "./children.ts";
import type { Subject } from "./subjects.ts";

/** One start of one tool. */
export interface StartupSample {
  /** ms until the ready line, or null when it never came. */
  readyMs: number | null;
  /** Peak resident set (VmHWM) in KiB seen while it ran. */
  peakRssKb: number;
  /** ms from start to the tool's exit, as ready.mjs saw it. */
  totalMs: number;
  /** SIGINTs the bench had to repeat because the tool ignored ready.mjs's one. */
  extraSigints: number;
  /** Why the sample is unusable, when it is. */
  error?: string;
}

/** What ready.mjs prints as its last line. */
interface ReadyReport {
  ready_ms: number | null;
  peak_rss_kb: number;
  total_ms: number;
  code: number | null;
  sig: string | null;
}

/**
 * ready.mjs interrupts the tool 300 ms after its ready line. A tool still
 * running this long after start ignored that SIGINT (bpftrace 0.17 sometimes
 * does; a second one works), so the bench repeats it every second, and kills
 * the tool at KILL_AFTER_MS, rather than wait for ready.mjs's 30 s limit.
 */
const REPEAT_SIGINT_AFTER_MS = 3000;
const KILL_AFTER_MS = 15_000;

/** Runs `subject` once under ready.mjs; never throws for a failing tool. */
export async function measureStartup(
  readyScript: string,
  node: string,
  subject: Subject,
  cwd: string,
): Promise<StartupSample> {
  const child = spawnTracked(
    [node, readyScript, subject.ready.source, ...subject.argv],
    { cwd, env: subject.env, output: "piped" },
  );
  const stderr = new Response(child.stderr).text();
  let extraSigints = 0;
  const startedAt = performance.now();
  const watchdog = setInterval(() => {
    const elapsed = performance.now() - startedAt;
    if (elapsed < REPEAT_SIGINT_AFTER_MS) return;
    const signal = elapsed < KILL_AFTER_MS ? "SIGINT" : "SIGKILL";
    for (const pid of childrenOf(child.pid)) {
      try {
        Deno.kill(pid, signal);
        if (signal === "SIGINT") extraSigints++;
      } catch {
        // Exited meanwhile.
      }
    }
  }, 1000);
  // ready.mjs prints its report when the tool exits, but its own 30 s
  // safety timer keeps Node alive after that: take the report and end it.
  const line = await firstJsonLine(child.stdout, 40_000);
  clearInterval(watchdog);
  killGroup(child.pid, "SIGKILL");
  await child.status;
  let report: ReadyReport;
  try {
    report = JSON.parse(line ?? "") as ReadyReport;
  } catch {
    const err = (await stderr).trim().split("\n").pop() ?? "";
    return {
      readyMs: null,
      peakRssKb: 0,
      totalMs: performance.now() - startedAt,
      extraSigints,
      error: `ready.mjs failed: ${err || line || "no report"}`,
    };
  }
  const sample: StartupSample = {
    readyMs: report.ready_ms,
    peakRssKb: report.peak_rss_kb,
    totalMs: report.total_ms,
    extraSigints,
  };
  if (report.ready_ms === null) {
    const how = report.sig ? `signal ${report.sig}` : `exit code ${report.code}`;
    sample.error = `no "Tracing" line (${how})`;
  }
  return sample;
}

/** The first line of `stream` that starts with "{", or null at its end or after `timeoutMs`. */
async function firstJsonLine(
  stream: ReadableStream<Uint8Array>,
  timeoutMs: number,
): Promise<string | null> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  const timer = setTimeout(() => reader.cancel(), timeoutMs);
  let text = "";
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) return null;
      text += value;
      for (const line of text.split("\n").slice(0, -1)) {
        if (line.startsWith("{")) return line;
      }
    }
  } finally {
    clearTimeout(timer);
    reader.cancel().catch(() => {});
  }
}
