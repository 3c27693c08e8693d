#!/usr/bin/env -S deno run -A
/**
 * CPU profiling cost, ours against bpftrace: sampling at 99 Hz on every CPU
 * while a CPU-bound workload runs on both CPUs.
 *
 * - Overhead: the workload's throughput (loop iterations per second, two
 *   threads with 24-deep frame-pointer stacks) with no profiler, under our
 *   `profile -F 99`, and under bpftrace's
 *   `profile:hz:99 { @[kstack, ustack] = count(); }`. Each profiler attaches
 *   first; then the workload runs its --seconds inside the sampling window.
 * - Symbolization: the time from the end of sampling (attach + duration) to
 *   the profiler's last output byte, i.e. reading the maps, walking and naming
 *   the stacks, printing. Both print kernel and user stacks with names.
 * - Samples and unique stacks printed, for scale.
 *
 * Rounds rotate the order of the three runs. Prints a Markdown table
 * (medians) and one JSON line with every run. Needs root, gcc and bpftrace.
 *
 *     deno run -A bench/profile.ts [--rounds 3] [--seconds 10]
 */
import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { describeMachine, machineLine } from "./machine.ts";
import { median } from "./table.ts";
import { keepResult } from "./results.ts";

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), "..");
const FREQ = 99;

const WORKLOAD_C = String.raw`
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double secs, now0;
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
__attribute__((noinline)) long leaf(long n) { volatile long x = 0; for (long i = 0; i < n; i++) x += i; return x; }
__attribute__((noinline)) long descend(int depth, long n) { return depth ? descend(depth - 1, n) + 1 : leaf(n); }
static void *worker(void *out) {
  long iterations = 0;
  while (now() - now0 < secs) { descend(24, 20000); iterations++; }
  *(long *)out = iterations;
  return NULL;
}
int main(int argc, char **argv) {
  char line[16];
  secs = atof(argv[1]);
  printf("ready\n"); fflush(stdout);
  if (!fgets(line, sizeof line, stdin)) return 1;
  long counts[2] = {0, 0};
  pthread_t t;
  now0 = now();
  pthread_create(&t, NULL, worker, &counts[1]);
  worker(&counts[0]);
  pthread_join(t, NULL);
  printf("iterations %ld\n", counts[0] + counts[1]); fflush(stdout);
  while (fgets(line, sizeof line, stdin)) {}
  return 0;
}
`;

type Subject = "none" | "ours" | "bpftrace";

/** One run: the workload's rate, and the profiler's symbolization time and output size. */
interface Run {
  subject: Subject;
  round: number;
  iterationsPerSecond: number;
  /** ms from the end of sampling to the profiler's last byte of output. */
  symbolizeMs?: number;
  samples?: number;
  stacks?: number;
  error?: string;
}

/** The workload, started and waiting for "go". */
class Workload {
  readonly child: Deno.ChildProcess;
  readonly #lines: ReadableStreamDefaultReader<string>;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  #buf = "";
  constructor(binary: string, seconds: number) {
    this.child = new Deno.Command(binary, {
      args: [String(seconds)],
      stdin: "piped",
      stdout: "piped",
    }).spawn();
    this.#lines = this.child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    this.#stdin = this.child.stdin.getWriter();
  }
  async waitFor(re: RegExp): Promise<RegExpMatchArray> {
    for (;;) {
      const m = this.#buf.match(re);
      if (m) return m;
      const { value, done } = await this.#lines.read();
      if (done) throw new Error(`workload ended before ${re}`);
      this.#buf += value;
    }
  }
  async go(): Promise<number> {
    await this.waitFor(/ready/);
    await this.#stdin.write(new TextEncoder().encode("go\n"));
    return Number((await this.waitFor(/iterations (\d+)/))[1]);
  }
  async end(): Promise<void> {
    await this.#stdin.close().catch(() => {});
    await this.child.status;
  }
}

/** A profiler process: when it attached, and when its output ended. */
class Profiler {
  readonly child: Deno.ChildProcess;
  attachedAt?: number;
  endedAt?: number;
  output = "";
  readonly done: Promise<void>;
  readonly #attached: Promise<void>;

  constructor(argv: string[], attachedLine: RegExp) {
    this.child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
    }).spawn();
    let resolveAttached!: () => void;
    this.#attached = new Promise((r) => (resolveAttached = r));
    const watch = async (stream: ReadableStream<Uint8Array>, keep: boolean) => {
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        if (keep) this.output += chunk;
        if (this.attachedAt === undefined && attachedLine.test(chunk)) {
          this.attachedAt = performance.now();
          resolveAttached();
        }
        this.endedAt = performance.now();
      }
    };
    this.done = Promise.all([watch(this.child.stdout, true), watch(this.child.stderr, false)])
      .then(() => {});
  }

  async attached(ms = 20000): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.#attached,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error("profiler did not attach")), ms);
      }),
    ]);
    clearTimeout(timer);
  }
}

async function build(dir: string): Promise<string> {
  await Deno.writeTextFile(`${dir}/work.c`, WORKLOAD_C);
  const out = await new Deno.Command("gcc", {
    args: ["-O1", "-fno-omit-frame-pointer", "-pthread", "-o", `${dir}/profwork`, `${dir}/work.c`],
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  return `${dir}/profwork`;
}

/** Runs the workload for `seconds`, under a profiler sampling a little longer (or none). */
async function run(
  subject: Subject,
  binary: string,
  seconds: number,
  round: number,
): Promise<Run> {
  const work = new Workload(binary, seconds);
  const window = seconds + 2; // the workload starts after attach and must end inside
  let profiler: Profiler | undefined;
  try {
    if (subject === "ours") {
      profiler = new Profiler(
        ["deno", "run", "-A", `${ROOT}/tools/profile.ts`, "-F", String(FREQ), String(window)],
        /Sampling at/,
      );
    } else if (subject === "bpftrace") {
      profiler = new Profiler(
        [
          "bpftrace",
          "-e",
          `profile:hz:${FREQ} { @[kstack, ustack] = count(); } interval:s:${window} { exit(); }`,
        ],
        /Attaching/,
      );
    }
    await profiler?.attached();
    const iterations = await work.go();
    const result: Run = { subject, round, iterationsPerSecond: iterations / seconds };
    if (profiler) {
      await profiler.done;
      await profiler.child.status;
      const samplingEnd = profiler.attachedAt! + window * 1000;
      result.symbolizeMs = profiler.endedAt! - samplingEnd;
      const counts = subject === "ours"
        ? [...profiler.output.matchAll(/^ {8}(\d+)$/gm)].map((m) => Number(m[1]))
        : [...profiler.output.matchAll(/^\]: (\d+)$/gm)].map((m) => Number(m[1]));
      result.samples = counts.reduce((a, b) => a + b, 0);
      result.stacks = counts.length;
    }
    return result;
  } catch (e) {
    return {
      subject,
      round,
      iterationsPerSecond: NaN,
      error: e instanceof Error ? e.message : String(e),
    };
  } finally {
    try {
      profiler?.child.kill("SIGKILL");
    } catch {
      // exited already
    }
    await work.end();
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: { rounds: { type: "string" }, seconds: { type: "string" } },
  });
  const rounds = Number(values.rounds ?? 3), seconds = Number(values.seconds ?? 10);
  const dir = await Deno.makeTempDir({ prefix: "bpftk-bench-profile-" });
  try {
    const binary = await build(dir);
    const subjects: Subject[] = ["none", "ours", "bpftrace"];
    const runs: Run[] = [];
    for (let round = 0; round < rounds; round++) {
      const order = [...subjects.slice(round % 3), ...subjects.slice(0, round % 3)];
      for (const s of order) {
        const r = await run(s, binary, seconds, round);
        console.error(`bench profile: round ${round + 1} ${s}: ${JSON.stringify(r)}`);
        runs.push(r);
      }
    }
    const med = (s: Subject, f: (r: Run) => number | undefined) =>
      median(
        runs.filter((r) => r.subject === s && !r.error).map(f).filter((v) =>
          v !== undefined && Number.isFinite(v)
        ) as number[],
      );
    const base = med("none", (r) => r.iterationsPerSecond);
    const row = (s: Subject, label: string) => {
      const rate = med(s, (r) => r.iterationsPerSecond);
      const cost = base && rate !== null ? `${((1 - rate / base) * 100).toFixed(2)}%` : "n/a";
      const sym = med(s, (r) => r.symbolizeMs);
      const samples = med(s, (r) => r.samples), stacks = med(s, (r) => r.stacks);
      return `| ${label} | ${rate?.toFixed(0) ?? "n/a"} | ${s === "none" ? "-" : cost} | ` +
        `${sym === null ? "-" : sym.toFixed(0)} | ${samples ?? "-"} | ${stacks ?? "-"} |`;
    };
    const machine = describeMachine();
    console.log([
      `### profile at ${FREQ} Hz on every CPU, ${seconds} s: ours vs bpftrace`,
      "",
      machineLine(machine, [firstLineOf(["bpftrace", "--version"])]),
      "",
      "| profiler | workload iterations/s | throughput cost | symbolization (ms) | " +
      "samples | stacks printed |",
      "|---|---:|---:|---:|---:|---:|",
      row("none", "none (baseline)"),
      row("ours", "ours: profile -F 99"),
      row("bpftrace", "bpftrace: profile:hz:99 @[kstack, ustack]"),
      "",
      `- Workload: 2 threads looping through 24 nested frame-pointer calls, ${seconds} s, ` +
      `started after the profiler attached; medians of ${rounds} rounds (order rotated).`,
      `- Symbolization: from attach + ${seconds + 2} s (the end of sampling) to the last byte ` +
      `the profiler printed. bpftrace prints symbol+offset per address, we print one line per ` +
      `function stack (bcc's format), so stack counts differ.`,
      "",
    ].join("\n"));
    keepResult("profile", { machine, config: { rounds, seconds, freq: FREQ }, runs });
    return 0;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function firstLineOf(argv: string[]): string {
  try {
    const out = new Deno.Command(argv[0], { args: argv.slice(1), stdout: "piped" }).outputSync();
    return new TextDecoder().decode(out.stdout).split("\n")[0];
  } catch {
    return `${argv[0]} missing`;
  }
}

if (import.meta.main) Deno.exit(await main());
