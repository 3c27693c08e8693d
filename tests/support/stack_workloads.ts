/**
 * Workloads with known stacks for the profilers' tests: small C programs
 * built here with `gcc -fno-omit-frame-pointer` (so frame-pointer stack
 * walks see every frame of ours), and a way to run them and talk to them.
 *
 * - busy: `main -> known_parent_function -> hot_leaf_function` spinning on
 *   the main thread and on N-1 more threads, for a given time; then it prints
 *   the CPU time it used (its main thread's, then the whole process's) and
 *   waits (blocked) until stdin closes.
 * - sleeper: `main -> known_sleep_parent -> sleeper_function`, which calls
 *   nanosleep through an inline `syscall` instruction (so the user stack's
 *   innermost frame is ours, not libc's), K times M ms, at real-time priority
 *   where allowed (so a busy machine does not add its waits); it prints the
 *   time it really slept, then waits until stdin closes.
 * - lib: a shared library function `known_library_function` and the
 *   addresses the symbol tests resolve.
 */
import { runOk, Spawned } from "./process.ts";

const BUSY_C = `
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double seconds(clockid_t clock) {
  struct timespec t;
  clock_gettime(clock, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

__attribute__((noinline)) double hot_leaf_function(long n) {
  volatile double x = 0;
  for (long i = 0; i < n; i++) x += i * 0.5;
  return x;
}

__attribute__((noinline)) double known_parent_function(double secs) {
  double end = seconds(CLOCK_MONOTONIC) + secs, sum = 0;
  while (seconds(CLOCK_MONOTONIC) < end) sum += hot_leaf_function(100000);
  return sum;
}

static double spin_seconds;
static void *thread_main(void *arg) {
  (void)arg;
  known_parent_function(spin_seconds);
  return NULL;
}

int main(int argc, char **argv) {
  int threads = argc > 2 ? atoi(argv[2]) : 1;
  spin_seconds = atof(argv[1]);
  char line[16];
  printf("pid %d\\n", getpid());
  fflush(stdout);
  if (!fgets(line, sizeof line, stdin)) return 1; /* "go" */
  pthread_t t[64];
  for (int i = 1; i < threads && i < 64; i++) pthread_create(&t[i], NULL, thread_main, NULL);
  known_parent_function(spin_seconds);
  double main_cpu = seconds(CLOCK_THREAD_CPUTIME_ID);
  for (int i = 1; i < threads && i < 64; i++) pthread_join(t[i], NULL);
  printf("main_cpu %.6f\\n", main_cpu);
  printf("cpu %.6f\\n", seconds(CLOCK_PROCESS_CPUTIME_ID));
  fflush(stdout);
  while (fgets(line, sizeof line, stdin)) {}
  return 0;
}
`;

const SLEEPER_C = `
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

/* nanosleep(req, NULL) with the syscall instruction here, not in libc. */
__attribute__((noinline)) long sleeper_function(long ms) {
  struct timespec req = { ms / 1000, (ms % 1000) * 1000000L };
  long ret;
  __asm__ volatile ("syscall" : "=a"(ret) : "0"((long)SYS_nanosleep), "D"(&req), "S"(0L)
                    : "rcx", "r11", "memory");
  return ret;
}

__attribute__((noinline)) double known_sleep_parent(int times, long ms) {
  double slept = 0;
  for (int i = 0; i < times; i++) {
    double t0 = now();
    sleeper_function(ms);
    slept += now() - t0;
  }
  return slept;
}

int main(int argc, char **argv) {
  int times = atoi(argv[1]);
  long ms = atol(argv[2]);
  char line[16];
  printf("pid %d\\n", getpid());
  fflush(stdout);
  if (!fgets(line, sizeof line, stdin)) return 1; /* "go" */
  /* Real-time priority where allowed: on a busy machine other tasks would
   * otherwise preempt us around the sleeps, and those waits (counted under
   * other stacks) would be in our measured time. */
  struct sched_param fifo = { .sched_priority = 10 };
  sched_setscheduler(0, SCHED_FIFO, &fifo);
  double slept = known_sleep_parent(times, ms);
  printf("slept_us %.0f\\n", slept * 1e6);
  fflush(stdout);
  while (fgets(line, sizeof line, stdin)) {}
  return 0;
}
`;

const LIB_C = `
__attribute__((noinline)) int known_library_function(int x) { return x * 3 + 1; }
`;

const LIB_MAIN_C = `
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>
int known_library_function(int x);
__attribute__((noinline)) int known_main_function(int x) { return x + 2; }
int main(void) {
  void *anon = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  printf("pid %d\\n", getpid());
  printf("main %p\\n", (void *)known_main_function);
  printf("lib %p\\n", (void *)known_library_function);
  printf("libc %p\\n", (void *)getppid);
  printf("anon %p\\n", anon);
  fflush(stdout);
  char line[16];
  while (fgets(line, sizeof line, stdin)) {}
  return known_main_function(known_library_function(1)) == 0;
}
`;

async function gcc(args: string[]): Promise<void> {
  await runOk("gcc", args);
}

/** Builds the workloads in a new temporary directory (remove it with `dir`). */
export async function buildWorkloads(): Promise<
  { dir: string; busy: string; sleeper: string; libMain: string }
> {
  const dir = await Deno.makeTempDir({ prefix: "bpftk-stacks-" });
  const flags = ["-O1", "-g0", "-fno-omit-frame-pointer"];
  await Deno.writeTextFile(`${dir}/busy.c`, BUSY_C);
  await Deno.writeTextFile(`${dir}/sleeper.c`, SLEEPER_C);
  await Deno.writeTextFile(`${dir}/lib.c`, LIB_C);
  await Deno.writeTextFile(`${dir}/libmain.c`, LIB_MAIN_C);
  await Promise.all([
    gcc([...flags, "-pthread", "-o", `${dir}/profbusy`, `${dir}/busy.c`]),
    gcc([...flags, "-o", `${dir}/offsleeper`, `${dir}/sleeper.c`]),
    gcc([...flags, "-shared", "-fPIC", "-o", `${dir}/libknown.so`, `${dir}/lib.c`]),
  ]);
  await gcc([
    ...flags,
    "-o",
    `${dir}/symmain`,
    `${dir}/libmain.c`,
    `-L${dir}`,
    "-lknown",
    `-Wl,-rpath,${dir}`,
  ]);
  return {
    dir,
    busy: `${dir}/profbusy`,
    sleeper: `${dir}/offsleeper`,
    libMain: `${dir}/symmain`,
  };
}

/** A running workload: its PID, its output lines, and a line-based stdin. */
export class Workload extends Spawned {
  /** Runs `path args`, pinned to `opts.cpu` when given (taskset execs it: same PID). */
  constructor(path: string, args: string[], opts: { cpu?: number } = {}) {
    const argv = opts.cpu === undefined ? [path, ...args] : [
      "taskset",
      "-c",
      String(opts.cpu),
      path,
      ...args,
    ];
    super(argv[0], argv.slice(1), { stdin: "piped" });
  }

  /** Waits (at most `ms`) for a line `key value` and returns value. */
  async value(key: string, ms = 60_000): Promise<string> {
    const re = new RegExp(`^${key} (\\S+)$`, "m");
    await this.waitForOutput(re, ms);
    return this.stdout.match(re)![1];
  }

  /** Sends one line. */
  async send(line: string): Promise<void> {
    await this.write(line + "\n");
  }

  /** Closes stdin (the workload exits) and waits. */
  async close(): Promise<void> {
    await this.closeStdin();
    await this.wait(10_000);
  }
}
