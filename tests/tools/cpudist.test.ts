/**
 * cpudist against a workload whose slices are known
 * (tests/tools/cpudist_workload.py): a SCHED_FIFO process pinned to one CPU
 * runs N bursts of BURST_MS, each followed by a sleep of SLEEP_MS (and one
 * sleep before the first). No ordinary task can preempt it, so its on-CPU
 * histogram must hold N slices in BURST_MS's bucket and nothing longer, and
 * its off-CPU histogram (-O) N + 1 periods in SLEEP_MS's bucket.
 *
 * Cross-check: libbpf-tools cpudist -O on the same process in the same
 * window must print the same off-CPU histogram (same events: every slot
 * within 1, totals within 2). Its on-CPU mode cannot be compared: it counts
 * a slice only when the task is preempted still runnable, and the
 * workload's slices all end in a sleep (bcc's cpudist, and ours, count them).
 */
import { equal as assertEquals, ok as assert } from "node:assert/strict";
import { ReferenceTool, waitForPrograms } from "../support/event_tools.ts";
import { assertSameHist } from "../support/hist_compare.ts";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { countBetween, parseLog2Hists, total } from "../support/log2_hist_parse.ts";
import { Spawned } from "../support/process.ts";
import { REPO_ROOT, runToolOnce, ToolProcess } from "../support/tool_process.ts";

const N = 20;
const BURST_MS = 24; // bucket 16 -> 31 msecs
const SLEEP_MS = 6; // bucket 4096 -> 8191 usecs
const CPU = 1;
const CPUDIST = "/usr/sbin/cpudist";
const ON = /Tracing on-CPU time/;
const OFF = /Tracing off-CPU time/;

async function ourPrograms(): Promise<number> {
  return (await loadedProgramNames()).filter((n) => n === "cpudist_switch").length;
}

/** Starts the workload paused; returns its PID and a function that runs it to the end. */
async function startWorkload() {
  const child = new Spawned("python3", [
    `${REPO_ROOT}tests/tools/cpudist_workload.py`,
    String(CPU),
    String(N),
    String(BURST_MS),
    String(SLEEP_MS),
  ], { stdin: "piped" });
  await child.waitForOutput(/^ready \d+$/m);
  const pid = Number(child.stdout.match(/^ready (\d+)$/m)![1]);
  const run = async () => {
    await child.write("go\n");
    await child.closeStdin();
    const out = await child.wait();
    assertEquals(out.code, 0, out.stderr);
  };
  return { pid, run, child };
}

kernelTest(
  "cpudist -p PID: N bursts in their bucket; -O: the sleeps, as libbpf-tools cpudist -O; -P names the process",
  async () => {
    const { pid, run, child } = await startWorkload();
    const p = ["-p", String(pid)];
    const before = await ourPrograms();
    const on = new ToolProcess("cpudist", ["-m", ...p]);
    const off = new ToolProcess("cpudist", ["-O", ...p]);
    const perPid = new ToolProcess("cpudist", ["-P", "-m", ...p]);
    const json = new ToolProcess("cpudist", ["-L", "-m", "--json", ...p]);
    const ref = new ReferenceTool(CPUDIST, ["-O", ...p]);
    const all = [on, off, perPid, json, ref];
    try {
      await on.waitForOutput(ON);
      await off.waitForOutput(OFF);
      await perPid.waitForOutput(ON);
      await ref.waitForOutput(OFF);
      await waitForPrograms("cpudist_switch", before + 4); // --json prints no banner
      await run();
      const [o, f, pp, j, r] = await Promise.all(all.map((t) => t.stop()));
      for (const x of [o, f, pp, j, r]) assertEquals(x.code, 0, x.stderr);

      // On-CPU, msecs: the N bursts in 16 -> 31, nothing longer, a few short slices.
      const [h] = parseLog2Hists(o.stdout);
      assert(h, o.stdout);
      assertEquals(h.unit, "msecs");
      const bursts = countBetween(h, 16, 31);
      // A burst can be split only by a task above FIFO 50 (a stop-class migration).
      assert(bursts >= N - 1 && bursts <= N, `bursts ${bursts} of ${N}:\n${o.stdout}`);
      assertEquals(countBetween(h, 32, 2 ** 40), 0, o.stdout);
      assert(total(h) <= N + 8, `more slices than the workload has:\n${o.stdout}`);

      // Off-CPU, usecs: the N + 1 sleeps in 4096 -> 8191 (and the wait for "go", longer).
      const [hOff] = parseLog2Hists(f.stdout);
      assert(hOff, f.stdout);
      assertEquals(hOff.unit, "usecs");
      const sleeps = countBetween(hOff, 4096, 8191);
      assert(sleeps >= N && sleeps <= N + 1, `sleeps ${sleeps} of ${N + 1}:\n${f.stdout}`);
      const [hRef] = parseLog2Hists(r.stdout);
      assert(hRef, `libbpf-tools cpudist -O printed no histogram: ${r.stdout}`);
      assertSameHist(hOff, hRef, { perSlot: 1, total: 2 }, ["ours", "libbpf-tools"]);

      // -P: one histogram, headed by the process, the same bursts.
      const perProcess = parseLog2Hists(pp.stdout);
      assertEquals(perProcess.length, 1, pp.stdout);
      assertEquals(perProcess[0].heading, `pid = ${pid} cpuburst`);
      assert(countBetween(perProcess[0], 16, 31) >= N - 1, pp.stdout);

      // -L --json: the same, per thread, in numbers.
      const doc = JSON.parse(j.stdout.trim().split("\n").at(-1)!);
      assertEquals(doc.unit, "msecs");
      assertEquals(doc.histograms.length, 1, j.stdout);
      assertEquals(doc.histograms[0].tid, pid);
      assertEquals(doc.histograms[0].comm, "cpuburst");
      const inBucket = doc.histograms[0].buckets
        .filter((b: { low: number }) => b.low === 16)
        .reduce((n: number, b: { count: number }) => n + b.count, 0);
      assert(inBucket >= N - 1 && inBucket <= N, j.stdout);
    } finally {
      for (const t of all) t.killTree();
      child.killTree();
    }
    await waitFor(async () => (await ourPrograms()) === before, 3000, "cpudist to unload");
  },
);

kernelTest("cpudist 1 2 -T: two reports with a time line each, then exits", async () => {
  const { code, stdout, stderr } = await runToolOnce("cpudist", ["-T", "1", "2"]);
  assertEquals(code, 0, stderr);
  assertEquals(stdout.match(/^\d\d:\d\d:\d\d\s*$/gm)?.length, 2, stdout);
  assert(parseLog2Hists(stdout).length >= 1, stdout); // the machine switched tasks meanwhile
});

for (
  const [args, pattern] of [
    [["-P", "-L"], /^cpudist: -P and -L cannot be used together/],
    [["-p", "0"], /^cpudist: invalid PID '0': must be at least 1/],
    [["-p", "x"], /^cpudist: invalid PID 'x': not an integer/],
    [["-c", "/tmp"], /^cpudist: -c \/tmp: not a cgroup v2 directory/],
    [["1", "0"], /^cpudist: invalid count '0': must be at least 1/],
    [["-Q"], /^cpudist: unknown option '-Q'/],
  ] as [string[], RegExp][]
) {
  Deno.test(`cpudist ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("cpudist", args);
    assertEquals(code, 2, stderr);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(pattern.test(stderr), stderr);
  });
}
