/**
 * runqlen against a run queue whose lower bound is known: three busy loops
 * pinned to CPU 1 (they never sleep, so CPU 1 always has at least three
 * runnable tasks: one running, at least two waiting). Over a 2 s interval
 * sampled at 99 Hz, every CPU 1 sample of `runqlen -C` must be 2 or more
 * (whatever else the machine runs only adds to it), there must be about
 * 2 x 99 of them, and `-O -C` must report CPU 1 100.00% occupied.
 *
 * Cross-check: libbpf-tools runqlen and bpftrace's runqlen.bt fail to load
 * on this kernel (cfs_rq.nr_running is gone); bpftrace, given the same path
 * as a one-liner (`curtask->se.cfs_rq->rq->nr_running` at 99 Hz on CPU 1),
 * runs in the same window and must see the same bound and about the same
 * median.
 */
import { equal as assertEquals, ok as assert } from "node:assert/strict";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { Spawned } from "../support/process.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";

const SPINNERS = 3;
const CPU = 1;
const SECONDS = 2;

/** Linear histogram rows ("        2          : 99  |***|") per "cpu = N" block. */
function parsePerCpu(stdout: string): Map<number, Map<number, number>> {
  const out = new Map<number, Map<number, number>>();
  let cpu: number | undefined;
  for (const line of stdout.split("\n")) {
    const head = line.match(/^cpu = (\d+)$/);
    if (head) out.set(cpu = Number(head[1]), new Map());
    const row = line.match(/^ {8}(\d+) +: (\d+) +\|/);
    if (row && cpu !== undefined) out.get(cpu)!.set(Number(row[1]), Number(row[2]));
  }
  return out;
}

function median(counts: Map<number, number>): number {
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  let seen = 0;
  for (const [value, n] of [...counts].sort((a, b) => a[0] - b[0])) {
    seen += n;
    if (seen * 2 >= total) return value;
  }
  return NaN;
}

kernelTest(
  "runqlen -C: three spinners on CPU 1 -> every CPU 1 sample >= 2, ~99 Hz, 100% occupied; bpftrace agrees",
  async () => {
    const spinners = Array.from(
      { length: SPINNERS },
      () => new Spawned("taskset", ["-c", String(CPU), "sh", "-c", "while :; do :; done"]),
    );
    const tools: Spawned[] = [];
    try {
      await new Promise((r) => setTimeout(r, 300)); // all three spinning
      const hist = new ToolProcess("runqlen", ["-C", String(SECONDS), "1"]);
      const occ = new ToolProcess("runqlen", ["-O", "-C", String(SECONDS), "1"]);
      const bt = new Spawned("bpftrace", [
        "-e",
        `profile:hz:99 /cpu == ${CPU}/ { @len = lhist(curtask->se.cfs_rq->rq->nr_running, 0, 64, 1); }` +
        ` interval:s:${SECONDS} { exit(); }`,
      ]);
      tools.push(hist, occ, bt);
      const [h, o, b] = await Promise.all(tools.map((t) => t.wait()));
      assertEquals(h.code, 0, h.stderr);
      assertEquals(o.code, 0, o.stderr);
      assertEquals(b.code, 0, b.stderr);

      assert(h.stdout.startsWith("Sampling run queue length... Hit Ctrl-C to end.\n\n"), h.stdout);
      const perCpu = parsePerCpu(h.stdout);
      assertEquals(perCpu.size, navigator.hardwareConcurrency, h.stdout);
      const cpu1 = perCpu.get(CPU)!;
      const samples = [...cpu1.values()].reduce((a, b) => a + b, 0);
      assert(samples >= 0.8 * 99 * SECONDS && samples <= 1.1 * 99 * SECONDS, h.stdout);
      for (const [len, n] of cpu1) {
        assert(len >= SPINNERS - 1, `runqlen ${len} x${n} on CPU 1:\n${h.stdout}`);
      }

      assert(
        new RegExp(`^runqocc, CPU ${String(CPU).padEnd(3)} 100\\.00%$`, "m").test(o.stdout),
        o.stdout,
      );

      // bpftrace's lhist of nr_running (the running task included): [lo, hi) rows.
      const bt1 = new Map<number, number>();
      for (const m of b.stdout.matchAll(/^\[(\d+), \d+\)\s+(\d+) /gm)) {
        if (Number(m[2]) > 0) bt1.set(Number(m[1]) - 1, Number(m[2]));
      }
      assert(bt1.size > 0, b.stdout);
      for (const [len] of bt1) assert(len >= SPINNERS - 1, `bpftrace saw ${len}:\n${b.stdout}`);
      assert(
        Math.abs(median(bt1) - median(cpu1)) <= 1,
        `ours:\n${h.stdout}\nbpftrace:\n${b.stdout}`,
      );
    } finally {
      for (const t of [...tools, ...spinners]) t.killTree();
      await Promise.allSettled([...tools, ...spinners].map((t) => t.wait()));
    }
    await waitFor(
      async () => !(await loadedProgramNames()).includes("runqlen"),
      3000,
      "runqlen to unload",
    );
  },
  { commands: ["bpftrace", "taskset"] },
);

kernelTest("runqlen: SIGINT prints the histogram and unloads", async () => {
  const p = new ToolProcess("runqlen", ["--json"]);
  await waitFor(async () => (await loadedProgramNames()).includes("runqlen"), 15000, "runqlen");
  await new Promise((r) => setTimeout(r, 300));
  const { code, stdout, stderr } = await p.stop();
  assertEquals(code, 0, stderr);
  const doc = JSON.parse(stdout.trim());
  assertEquals(doc.unit, "runqlen");
  assert(doc.histograms[0].buckets.length > 0, stdout);
  await waitFor(
    async () => !(await loadedProgramNames()).includes("runqlen"),
    3000,
    "runqlen to unload",
  );
});

for (
  const [args, pattern] of [
    [["-f", "0"], /^runqlen: invalid frequency '0': must be at least 1/],
    [["-f", "x"], /^runqlen: invalid frequency 'x': not an integer/],
    [["0"], /^runqlen: invalid interval '0': must be at least 1/],
    [["-d"], /^runqlen: unknown option '-d'/],
  ] as [string[], RegExp][]
) {
  Deno.test(`runqlen ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("runqlen", args);
    assertEquals(code, 2, stderr);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(pattern.test(stderr), stderr);
  });
}
