/**
 * Start to ready: milliseconds from spawning a tool to its "Tracing" line,
 * and its peak RSS. Timed here, from outside the tool: the bench's own
 * process spawns it, reads its stdout and stderr as they come, and polls
 * its VmHWM every few milliseconds; 300 ms after the ready line it sends
 * SIGINT, as an operator would. A cold start drops the page cache first
 * (`echo 3 > /proc/sys/vm/drop_caches`); the program cache (lib/cli/program_cache.ts)
 * stays, as it does across a reboot.
 */
import { childrenOf, killGroup, spawnTracked } from "./children.ts";
import type { Subject } from "./subjects.ts";

/** One start of one tool. */
export interface StartupSample {
  /** ms until the ready line, or null when it never came. */
  readyMs: number | null;
  /** Peak resident set (VmHWM) in KiB seen while it ran. */
  peakRssKb: number;
  /** ms from start to the tool's exit. */
  totalMs: number;
  /** SIGINTs the bench had to repeat because the tool ignored the first. */
  extraSigints: number;
  /** Why the sample is unusable, when it is. */
  error?: string;
}

/** How long after the ready line the tool is interrupted (it reports on exit). */
const INTERRUPT_AFTER_READY_MS = 300;
/** VmHWM polling period. */
const RSS_POLL_MS = 5;
/** A tool that never gets ready is given up on after this long. */
const READY_LIMIT_MS = 30_000;
/**
 * A tool still running this long after the first SIGINT ignored it
 * (bpftrace 0.17 sometimes does; a second one works): repeat it every
 * second, then kill at KILL_AFTER_MS.
 */
const REPEAT_SIGINT_AFTER_MS = 3000;
const KILL_AFTER_MS = 15_000;

function vmHwmKb(pid: number): number {
  try {
    const m = Deno.readTextFileSync(`/proc/${pid}/status`).match(/^VmHWM:\s+(\d+)/m);
    return m ? Number(m[1]) : 0;
  } catch {
    return 0; // exited
  }
}

/**
 * Empties the page cache (dirty pages written first), so the next start reads
 * its executable, libraries, sources and caches from disk: a cold start.
 */
export function dropCaches(): void {
  new Deno.Command("sync").outputSync();
  Deno.writeTextFileSync("/proc/sys/vm/drop_caches", "3\n");
}

/**
 * Runs `subject` once and times it; never throws for a failing tool. `cold`
 * drops the page cache just before the start.
 */
export async function measureStartup(
  subject: Subject,
  cwd: string,
  cold = false,
): Promise<StartupSample> {
  if (cold) dropCaches();
  const t0 = performance.now();
  const child = spawnTracked(subject.argv, { cwd, env: subject.env, output: "piped" });
  let readyMs: number | null = null, interruptedAt: number | null = null;
  let peakRssKb = 0, extraSigints = 0, seen = "", lastSigint = 0;
  const onText = (text: string) => {
    if (readyMs !== null) return;
    seen = (seen + text).slice(-4096); // the ready line may arrive in pieces
    if (subject.ready.test(seen)) readyMs = performance.now() - t0;
  };
  const read = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s.pipeThrough(new TextDecoderStream())) onText(chunk);
  };
  const streams = Promise.all([read(child.stdout), read(child.stderr)]).catch(() => {});
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const poll = setInterval(() => {
    peakRssKb = Math.max(peakRssKb, vmHwmKb(child.pid));
    const now = performance.now() - t0;
    if (readyMs === null) {
      if (now > READY_LIMIT_MS) killGroup(child.pid, "SIGKILL");
      return;
    }
    if (interruptedAt === null && now >= readyMs + INTERRUPT_AFTER_READY_MS) {
      interruptedAt = lastSigint = now;
      killGroup(child.pid, "SIGINT");
    } else if (interruptedAt !== null && !exited) {
      const since = now - interruptedAt;
      if (since >= KILL_AFTER_MS) killGroup(child.pid, "SIGKILL");
      else if (since >= REPEAT_SIGINT_AFTER_MS && now - lastSigint >= 1000) {
        lastSigint = now;
        extraSigints++;
        for (const pid of [child.pid, ...childrenOf(child.pid)]) {
          try {
            Deno.kill(pid, "SIGINT");
          } catch {
            // exited meanwhile
          }
        }
      }
    }
  }, RSS_POLL_MS);
  const { code, signal } = await status;
  clearInterval(poll);
  await streams;
  const sample: StartupSample = {
    readyMs,
    peakRssKb,
    totalMs: performance.now() - t0,
    extraSigints,
  };
  if (readyMs === null) {
    const how = signal ? `signal ${signal}` : `exit code ${code}`;
    sample.error = `no ready line (${how})`;
  }
  return sample;
}
