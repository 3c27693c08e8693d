/**
 * pidpersec against a known workload: a Python process forks 500 children
 * (each exits at once) while `pidpersec 1 5` runs. The truth for every fork
 * on the machine is the kernel's own counter (the "processes" line of
 * /proc/stat, read when the tool starts counting and when it ends); the
 * workload's 500 are inside it. bpftrace's pidpersec.bt watches the same
 * window.
 */
import { equal as assertEquals, ok as assert } from "node:assert/strict";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { PausedWorkload, waitForPrograms } from "../support/event_tools.ts";
import { Spawned } from "../support/process.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";

const PYTHON = "/usr/bin/python3";
const N = 500;

const WORKLOAD = String.raw`
import os, sys
sys.stdin.readline()
for _ in range(${N}):
    pid = os.fork()
    if pid == 0: os._exit(0)
    os.waitpid(pid, 0)
print("done", flush=True)
`;

/** The kernel's count of forks since boot. */
function forksSinceBoot(): number {
  return Number(/^processes (\d+)$/m.exec(Deno.readTextFileSync("/proc/stat"))![1]);
}

/** The per-second counts printed. */
function counts(stdout: string, re: RegExp): number[] {
  return [...stdout.matchAll(re)].map((m) => Number(m[1]));
}

kernelTest("pidpersec: 500 forks are counted, the total matching the kernel's own", async (t) => {
  const work = new PausedWorkload(PYTHON, ["-c", WORKLOAD]);
  const bt = new Spawned("bpftrace", ["/usr/sbin/pidpersec.bt"]);
  let tool: ToolProcess | undefined;
  let before = 0, after = 0;
  let ours = "", theirs = "";
  try {
    await bt.waitForOutput(/Tracing new processes/, 30_000);
    tool = new ToolProcess("pidpersec", ["1", "5"]);
    await tool.waitForOutput(/Tracing\.\.\. Ctrl-C to end\./);
    before = forksSinceBoot();
    await new Promise((r) => setTimeout(r, 1200));
    const done = await work.run();
    assertEquals(done.code, 0, done.stderr);
    const o = await tool.finish(15_000);
    after = forksSinceBoot();
    assertEquals(o.code, 0, o.stderr);
    ours = o.stdout;
    await new Promise((r) => setTimeout(r, 1100)); // bpftrace's next second
  } finally {
    tool?.killTree();
    theirs = (await bt.stop()).stdout;
  }
  const c = counts(ours, /^\d\d:\d\d:\d\d: PIDs\/sec: (\d+)$/gm);

  await t.step("five lines, HH:MM:SS: PIDs/sec: N", () => {
    assertEquals(ours.split("\n")[0], "Tracing... Ctrl-C to end.");
    assertEquals(c.length, 5, ours);
  });

  await t.step("the total is the kernel's fork count over the same window", () => {
    const total = c.reduce((a, b) => a + b, 0), kernel = after - before;
    console.log(`pidpersec: ours ${c.join(" ")} (total ${total}), kernel counter ${kernel}`);
    assert(total >= N, `${total} < ${N}\n${ours}`);
    // the two reads of /proc/stat are a few ms off the tool's own window
    assert(Math.abs(total - kernel) <= 0.05 * kernel + 20, `ours ${total}, kernel ${kernel}`);
  });

  await t.step("bpftrace pidpersec.bt saw the same burst", () => {
    // On a loaded machine the burst can straddle a second: compare totals, not peaks.
    // bpftrace ran longer than ours (it starts first, stops last), so it may see more.
    const b = counts(theirs, /^\d\d:\d\d:\d\d PIDs\/sec: @: (\d+)$/gm);
    const sum = (xs: number[]) => xs.reduce((x, y) => x + y, 0);
    assert(sum(b) >= N && sum(c) >= N, `bpftrace ${b} / ours ${c}`);
  });
  await waitFor(
    async () => !(await loadedProgramNames()).includes("pidpersec"),
    5000,
    "pidpersec to unload",
  );
});

kernelTest("pidpersec: SIGINT exits 0 and leaves nothing loaded", async () => {
  const tool = new ToolProcess("pidpersec", []);
  await tool.waitForOutput(/Tracing/);
  await waitForPrograms("pidpersec", 1);
  assertEquals((await tool.stop("SIGINT")).code, 0);
  await waitFor(
    async () => !(await loadedProgramNames()).includes("pidpersec"),
    5000,
    "pidpersec to unload",
  );
});

for (const args of [["0"], ["1", "0"], ["x"], ["-p", "1"], ["1", "2", "3"]]) {
  Deno.test(`pidpersec ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("pidpersec", args);
    assertEquals(code, 2, stderr);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(stderr.startsWith("pidpersec: "), stderr);
  });
}
