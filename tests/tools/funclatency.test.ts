/**
 * funclatency against a workload whose truth is known: a small C program
 * (built here with gcc) calls sleeper_function(ms), which nanosleeps that
 * long, 3 times with 20 ms and 3 times with 70 ms, and measures each call
 * itself with CLOCK_MONOTONIC. Each call's latency as a uprobe pair sees it
 * lies between what it asked to sleep and what the workload measured.
 * Our text run (-m, by path, every process), our --json -u -p -i 1 run and
 * libbpf-tools funclatency -m on the same function watch it in the same
 * window.
 */
import { deepEqual, equal as assertEquals, ok as assert } from "node:assert/strict";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { PausedWorkload, ReferenceTool, waitForPrograms } from "../support/event_tools.ts";
import { parseLog2Hists } from "../support/log2_hist_parse.ts";
import { runOk } from "../support/process.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";

const REFERENCE = "/usr/sbin/funclatency";
const SLEEPS_MS = [20, 20, 20, 70, 70, 70];

const WORKLOAD_C = `
#include <stdio.h>
#include <time.h>
static double now_us(void) {
  struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}
__attribute__((noinline)) void sleeper_function(int ms) {
  struct timespec t = { 0, ms * 1000000L };
  nanosleep(&t, NULL);
}
int main(void) {
  int ms[] = { ${SLEEPS_MS.join(", ")} };
  getchar();
  for (int i = 0; i < ${SLEEPS_MS.length}; i++) {
    double t0 = now_us();
    sleeper_function(ms[i]);
    printf("%.3f\\n", now_us() - t0);
  }
  printf("done\\n");
  fflush(stdout);
  while (getchar() != EOF) {}
  return 0;
}
`;

/** Slot i counts values in [2^i, 2^(i+1)-1] (slot 0: 0 and 1). */
function slotOf(v: number): number {
  return v < 2 ? 0 : Math.floor(Math.log2(v));
}

/**
 * Each latency lies in [low[i], high[i]] (in the histogram's unit): at every
 * slot edge, the count at or above it lies between the lows and the highs there.
 */
function assertHistBetween(counts: number[], low: number[], high: number[]): void {
  const shown = `histogram ${JSON.stringify(counts)}, low ${low}, high ${high}`;
  assertEquals(counts.reduce((a, b) => a + b, 0), low.length, shown);
  for (let slot = 1; slot < 64; slot++) {
    const got = counts.slice(slot).reduce((a, b) => a + b, 0);
    const surely = low.filter((v) => slotOf(v) >= slot).length;
    const maybe = high.filter((v) => slotOf(v) >= slot).length;
    assert(surely <= got && got <= maybe, `at or above slot ${slot}: ${got}: ${shown}`);
  }
}

async function assertNoneLoaded(): Promise<void> {
  await waitFor(
    async () => !(await loadedProgramNames()).some((n) => n.startsWith("funclat_")),
    5000,
    "funclatency to unload",
  );
}

kernelTest(
  "funclatency: 3 x 20 ms and 3 x 70 ms calls of a function, as libbpf-tools",
  async (t) => {
    const dir = Deno.makeTempDirSync({ prefix: "funclatency-test-" });
    Deno.writeTextFileSync(`${dir}/sl.c`, WORKLOAD_C);
    const bin = `${dir}/flwl`;
    await runOk("gcc", ["-O0", "-o", bin, `${dir}/sl.c`]);
    const work = new PausedWorkload(bin, []);
    const W = String(work.pid);
    const target = `${bin}:sleeper_function`;
    const text = new ToolProcess("funclatency", ["-m", target]);
    const json = new ToolProcess("funclatency", [
      "--json",
      "-u",
      "-i",
      "1",
      "-p",
      W,
      ":sleeper_function",
    ]);
    const ref = new ReferenceTool(REFERENCE, ["-m", target]);
    const out: Record<string, { code: number; stdout: string; stderr: string }> = {};
    try {
      await text.waitForOutput(/Hit Ctrl-C to exit/);
      await ref.waitForOutput(/Hit Ctrl-C to exit/, 30_000);
      await waitForPrograms("funclat_return", 2);
      await work.write("go\n");
      await work.waitForOutput(/done/, 30_000);
      await new Promise((r) => setTimeout(r, 1500)); // one more -i interval
    } finally {
      out.text = await text.stop();
      out.json = await json.stop();
      out.ref = await ref.stop("SIGINT");
      await work.closeStdin();
      out.work = await work.wait();
      Deno.removeSync(dir, { recursive: true });
    }
    for (const [name, o] of Object.entries(out)) assertEquals(o.code, 0, `${name}: ${o.stderr}`);
    const measuredUs = out.work.stdout.trim().split("\n").filter((l) => l !== "done").map(Number);
    assertEquals(measuredUs.length, SLEEPS_MS.length);

    await t.step("-m: six calls, each between its sleep and the workload's measure", () => {
      const lines = out.text.stdout.split("\n");
      assertEquals(lines[0], `Tracing ${target}.  Hit Ctrl-C to exit`);
      assertEquals(lines.at(-2), `Exiting trace of ${target}`);
      const [h] = parseLog2Hists(out.text.stdout);
      assertEquals(h.unit, "msec");
      assertHistBetween(h.counts, SLEEPS_MS, measuredUs.map((us) => us / 1000));
    });

    await t.step("--json -u -p :FUNC -i 1: the intervals add up to the same six, in usec", () => {
      const reports = out.json.stdout.trim().split("\n").map((l) => JSON.parse(l));
      assert(reports.length >= 2, out.json.stdout);
      const counts = new Array(64).fill(0);
      for (const r of reports) {
        assertEquals(r.unit, "usec");
        for (const h of r.histograms) {
          for (const b of h.buckets) counts[slotOf(b.low)] += b.count;
        }
      }
      assertHistBetween(counts, SLEEPS_MS.map((ms) => ms * 1000), measuredUs);
    });

    await t.step("libbpf-tools funclatency -m: the same histogram", () => {
      const [ours] = parseLog2Hists(out.text.stdout);
      const [theirs] = parseLog2Hists(out.ref.stdout);
      deepEqual(ours.counts, theirs.counts);
    });
    await assertNoneLoaded();
  },
  { commands: ["gcc", REFERENCE] },
);

kernelTest("funclatency: SIGINT exits 0 and leaves nothing loaded", async () => {
  const tool = new ToolProcess("funclatency", ["c:malloc"]);
  await tool.waitForOutput(/Hit Ctrl-C/);
  await waitForPrograms("funclat_return", 1);
  const o = await tool.stop("SIGINT");
  assertEquals(o.code, 0, o.stderr);
  assert(o.stdout.trimEnd().endsWith("Exiting trace of c:malloc"), o.stdout);
  await assertNoneLoaded();
});

kernelTest("funclatency: a kernel function needs kprobes: one line, exit 1", async () => {
  const kprobes = [
    "/sys/bus/event_source/devices/kprobe",
    "/sys/kernel/tracing/kprobe_events",
  ].some((f) => {
    try {
      Deno.statSync(f);
      return true;
    } catch {
      return false;
    }
  });
  if (kprobes) return; // this kernel has them: nothing to check
  const { code, stderr } = await runToolOnce("funclatency", ["vfs_read"]);
  assertEquals(code, 1, stderr);
  assertEquals(stderr.trim().split("\n").length, 1, stderr);
  assert(/kprobe/i.test(stderr), stderr);
});

Deno.test("funclatency c:no_such_function: one line, exit 1", async () => {
  const { code, stderr } = await runToolOnce("funclatency", ["c:no_such_function"]);
  assertEquals(code, 1, stderr);
  assert(/has no function 'no_such_function'$/.test(stderr.trim()), stderr);
});

for (
  const args of [
    [],
    ["-m", "-u", "c:malloc"],
    ["nolibrary:malloc"],
    [":malloc"],
    ["c:mal*"],
    ["-i", "0", "c:malloc"],
    ["-d", "x", "c:malloc"],
    ["a:b:c:d"],
  ]
) {
  Deno.test(`funclatency ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("funclatency", args);
    assertEquals(code, 2, stderr);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(stderr.startsWith("funclatency: "), stderr);
  });
}
