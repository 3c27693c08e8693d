/**
 * ugc against a workload whose truth is known: Debian's python3 (built with
 * USDT probes; a python3 earlier on PATH may not be) disables automatic GC,
 * makes 500 reference cycles and calls gc.collect(2) 4 times, printing what
 * each returned. In the same window: our text run, our --json -m run, and
 * bpftrace on the same USDT probe with -p (it raises the semaphore too).
 * bcc ugc cannot run here (no kernel headers).
 */
import { deepEqual, equal as assertEquals, ok as assert } from "node:assert/strict";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { PausedWorkload, waitForPrograms } from "../support/event_tools.ts";
import { Spawned } from "../support/process.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";

const PYTHON = "/usr/bin/python3";
const N = 4;

const GC_PY = `
import gc, sys, time
gc.disable()
sys.stdin.readline()
for i in range(${N}):
    junk = []
    for j in range(500):
        a = []
        a.append(a)
        junk.append(a)
    del junk, a
    t0 = time.monotonic()
    n = gc.collect(2)
    print(n, "%.1f" % ((time.monotonic() - t0) * 1e6), flush=True)
print("done", flush=True)
sys.stdin.read()
`;

async function assertNoneLoaded(): Promise<void> {
  await waitFor(
    async () => !(await loadedProgramNames()).some((n) => n.startsWith("ugc_")),
    10_000,
    "ugc to unload",
  );
}

kernelTest(
  "ugc -l python: 4 gc.collect(2) calls -> 4 lines with the objects collected, as bpftrace",
  async (t) => {
    const dir = Deno.makeTempDirSync({ prefix: "ugc-test-" });
    Deno.writeTextFileSync(`${dir}/gc.py`, GC_PY);
    const work = new PausedWorkload(PYTHON, [`${dir}/gc.py`]);
    const W = String(work.pid);
    await new Promise((r) => setTimeout(r, 300)); // the interpreter maps itself
    const python = Deno.realPathSync(PYTHON);
    const text = new ToolProcess("ugc", ["-l", "python", W]);
    const json = new ToolProcess("ugc", ["--json", "-m", "-l", "python", W]);
    const bt = new Spawned("bpftrace", [
      "-p",
      W,
      "-e",
      `usdt:${python}:python:gc__start { printf("start %d\\n", arg0); }
       usdt:${python}:python:gc__done { printf("done %d\\n", arg0); }`,
    ]);
    const out: Record<string, { code: number; stdout: string; stderr: string }> = {};
    try {
      await text.waitForOutput(/DESCRIPTION/, 30_000);
      await bt.waitForOutput(/Attaching 2 probes/, 30_000, "stdout");
      await waitForPrograms("ugc_done", 2);
      await work.write("go\n");
      await work.waitForOutput(/done/, 30_000);
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      // Before the interpreter's own collections at exit.
      out.text = await text.stop();
      out.json = await json.stop();
      out.bt = await bt.stop();
      await work.closeStdin();
      out.work = await work.wait();
      Deno.removeSync(dir, { recursive: true });
    }
    for (const [name, o] of Object.entries(out)) assertEquals(o.code, 0, `${name}: ${o.stderr}`);
    const truth = out.work.stdout.trim().split("\n").filter((l) => l !== "done")
      .map((l) => l.split(" ").map(Number));
    assertEquals(truth.length, N);

    await t.step(
      "text: 4 lines 'gen 2 GC collected N objects', each within its own measure",
      () => {
        const lines = out.text.stdout.split("\n");
        assertEquals(
          lines[0],
          `Tracing garbage collections in python process ${W}... Ctrl-C to quit.`,
        );
        assertEquals(lines[1].trimEnd(), "START    TIME (us) DESCRIPTION");
        const gcs = lines.slice(2).filter((l) => l.trim() !== "");
        assertEquals(gcs.length, N, out.text.stdout);
        for (const [i, l] of gcs.entries()) {
          const m = l.trimEnd().match(
            /^(\d+\.\d{3}) +(\d+\.\d{2}) +gen 2 GC collected (\d+) objects$/,
          );
          assert(m, l);
          assertEquals(Number(m[3]), truth[i][0]);
          assert(Number(m[2]) > 0 && Number(m[2]) <= truth[i][1] + 1, `${l} vs ${truth[i][1]} us`);
        }
      },
    );

    await t.step("--json -m: the same collections", () => {
      const events = out.json.stdout.trim().split("\n").map((l) => JSON.parse(l));
      deepEqual(events.map((e) => [e.generation, e.collected]), truth.map((x) => [2, x[0]]));
    });

    await t.step("bpftrace on the same probes: the same generations and counts", () => {
      const done = [...out.bt.stdout.matchAll(/^done (-?\d+)$/gm)].map((m) => Number(m[1]));
      const start = [...out.bt.stdout.matchAll(/^start (-?\d+)$/gm)].map((m) => Number(m[1]));
      deepEqual(done, truth.map((x) => x[0]));
      deepEqual(start, Array(N).fill(2));
    });
    await assertNoneLoaded();
  },
  { commands: [PYTHON, "bpftrace"] },
);

Deno.test("ugc -l java PID: not implemented: one line, exit 1", async () => {
  const { code, stderr } = await runToolOnce("ugc", ["-l", "java", String(Deno.pid)]);
  assertEquals(code, 1, stderr);
  assertEquals(stderr.trim().split("\n").length, 1, stderr);
});

for (const args of [[], ["-l", "cobol", "1"], ["x"], ["4194304"], ["-M", "-1", "1"]]) {
  Deno.test(`ugc ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("ugc", args);
    assertEquals(code, 2, stderr);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(stderr.startsWith("ugc: "), stderr);
  });
}
