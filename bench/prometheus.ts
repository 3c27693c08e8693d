/**
 * The Prometheus exporter's cost per scrape: `runqlat --prometheus` serving
 * 1, 10 and 100 histogram series, scraped back to back by this process.
 *
 * The series come from a C workload of N threads, each sleeping 1 ms in a
 * loop (so each has run queue waits): `runqlat -p PID` is one series,
 * `runqlat -L -p PID` one per thread (N = 10, 100; the main thread, blocked
 * in pthread_join, adds none or one). For each: SCRAPES scrapes, one every
 * GAP_MS, each timed from request to the last byte; the exporter's CPU time
 * (/proc/PID/stat utime + stime, every thread, in 10 ms ticks) over the scrapes,
 * minus the same wall time idle, per scrape; its RSS (VmRSS) after the first
 * 10 scrapes, half of them and all of them (growth between the last two
 * would show a leak). SCRAPES (default 1000) from the environment.
 *
 *     sudo deno run -A bench/prometheus.ts
 */
import { killAllChildren, killGroup, spawnTracked, stopGracefully } from "./children.ts";
import { describeMachine } from "./machine.ts";
import { keepResult } from "./results.ts";

const SCRAPES = Number(Deno.env.get("SCRAPES") ?? 1000);
const GAP_MS = 20;
const ROOT = new URL("../", import.meta.url).pathname;

const THREADS_C = `
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static void *loop(void *arg) {
  (void)arg;
  struct timespec ms = {0, 1000000};
  for (;;) nanosleep(&ms, NULL);
  return NULL;
}
int main(int argc, char **argv) {
  int n = atoi(argv[1]);
  pthread_t t;
  for (int i = 0; i < n; i++) pthread_create(&t, NULL, loop, NULL);
  printf("ready\\n");
  fflush(stdout);
  pthread_join(t, NULL);
  return 0;
}
`;

/** The process's CPU time (user + system, every thread, living or not) in ns. */
function cpuNs(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15 (1-based), in clock ticks (100 Hz here)
  return (Number(f[11]) + Number(f[12])) * 10_000_000;
}

function rssKb(pid: number): number {
  const m = Deno.readTextFileSync(`/proc/${pid}/status`).match(/^VmRSS:\s+(\d+)/m);
  return Number(m?.[1] ?? 0);
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function readLine(stream: ReadableStream<Uint8Array>, re: RegExp, ms: number): Promise<void> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const deadline = Date.now() + ms;
  try {
    while (!re.test(text)) {
      if (Date.now() > deadline) throw new Error(`no ${re} in ${ms} ms: ${text}`);
      const { value, done } = await reader.read();
      if (done) throw new Error(`ended before ${re}: ${text}`);
      text += value;
    }
  } finally {
    reader.releaseLock();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))];
}

async function measure(exe: string, threads: number, perThread: boolean) {
  const work = spawnTracked([exe, String(threads)], { output: "piped" });
  const runs: Record<string, unknown> = {};
  try {
    await readLine(work.stdout, /ready/, 10_000);
    const port = freePort();
    const args = [...(perThread ? ["-L"] : []), "-p", String(work.pid)];
    const tool = spawnTracked([
      "deno",
      "run",
      "-A",
      `${ROOT}tools/runqlat.ts`,
      ...args,
      "--prometheus",
      `127.0.0.1:${port}`,
    ], { output: "piped" });
    try {
      await readLine(tool.stdout, /serving Prometheus metrics/, 30_000);
      const url = `http://127.0.0.1:${port}/metrics`;
      const scrape = async () => {
        const t = performance.now();
        const body = await (await fetch(url)).text();
        return { ms: performance.now() - t, body };
      };
      await sleep(1000); // the threads' first waits
      // idle CPU over the same wall time as the scrapes
      const idleMs = SCRAPES * GAP_MS;
      const idle0 = cpuNs(tool.pid);
      await sleep(idleMs);
      const idleNs = cpuNs(tool.pid) - idle0;

      const latencies: number[] = [];
      let series = 0, bytes = 0, rssAfter10 = 0, rssHalf = 0;
      const cpu0 = cpuNs(tool.pid);
      const wall0 = performance.now();
      for (let i = 0; i < SCRAPES; i++) {
        const { ms, body } = await scrape();
        latencies.push(ms);
        series = body.split("\n").filter((l) => l.includes("_count")).length;
        bytes = body.length;
        if (i === 9) rssAfter10 = rssKb(tool.pid);
        if (i === Math.floor(SCRAPES / 2)) rssHalf = rssKb(tool.pid);
        await sleep(GAP_MS);
      }
      const wallMs = performance.now() - wall0;
      const busyNs = cpuNs(tool.pid) - cpu0 - idleNs * (wallMs / idleMs);
      runs.series = series;
      runs.exposition_bytes = bytes;
      runs.scrapes = SCRAPES;
      runs.scrape_ms = {
        median: median(latencies),
        p90: percentile(latencies, 0.9),
        max: Math.max(...latencies),
      };
      runs.cpu_us_per_scrape = busyNs / SCRAPES / 1000;
      runs.idle_cpu_us_per_s = idleNs / idleMs;
      runs.rss_kb = { after10: rssAfter10, afterHalf: rssHalf, afterAll: rssKb(tool.pid) };
      runs.latencies_ms = latencies.map((x) => Math.round(x * 1000) / 1000);
    } finally {
      await stopGracefully(tool, 10_000);
    }
  } finally {
    killGroup(work.pid, "SIGKILL");
    await work.status;
  }
  return { threads, perThread, ...runs };
}

const dir = await Deno.makeTempDir({ prefix: "bpftk-bench-prom-" });
try {
  await Deno.writeTextFile(`${dir}/threads.c`, THREADS_C);
  const gcc = await new Deno.Command("gcc", {
    args: ["-O1", "-pthread", "-o", `${dir}/threads`, `${dir}/threads.c`],
  }).output();
  if (!gcc.success) throw new Error(new TextDecoder().decode(gcc.stderr));
  const results = [];
  for (const [threads, perThread] of [[1, false], [10, true], [100, true]] as const) {
    const r = await measure(`${dir}/threads`, threads, perThread);
    const { latencies_ms: _, ...summary } = r as Record<string, unknown>;
    console.error(JSON.stringify(summary));
    results.push(r);
  }
  keepResult("prometheus", { machine: describeMachine(), gapMs: GAP_MS, results });
} finally {
  killAllChildren();
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}
