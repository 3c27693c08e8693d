/**
 * runqslower against run queue waits whose truth is known
 * (tests/support/sched_workload.py): a waiter process that waits N times
 * about SPIN_MS in the run queue behind a SCHED_FIFO spinner on its CPU,
 * every wait timed by the workload itself. Above the default 10000 us
 * threshold, the tool must print one line per long wait of the waiter, each
 * between SPIN_MS and the wait the workload measured (which also holds
 * what follows the switch-in, up to its read; 2% for the clocks), at most
 * one missed (a wait the kernel did not see as a run queue wait, as the
 * runqlat test allows).
 *
 * Cross-check: libbpf-tools runqslower -p PID, run in the same window, must
 * print the same waits (same count within 1, latencies within 2%).
 */
import {
  deepEqual as assertDeepEqual,
  equal as assertEquals,
  ok as assert,
} from "node:assert/strict";
import { ReferenceTool, waitForPrograms } from "../support/event_tools.ts";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { Spawned } from "../support/process.ts";
import { REPO_ROOT, runToolOnce, ToolProcess } from "../support/tool_process.ts";

const N = 15;
const SPIN_MS = 20;
const CPU = 1;
const RUNQSLOWER = "/usr/sbin/runqslower";
const READY = /Tracing run queue latency higher than 10000 us/;

async function ourPrograms(): Promise<number> {
  return (await loadedProgramNames()).filter((n) => n === "runqslow_switch").length;
}

/** Starts the workload; returns the waiter's PID, the spinner's, and a function that runs it. */
async function startWorkload() {
  const child = new Spawned("python3", [
    `${REPO_ROOT}tests/support/sched_workload.py`,
    String(CPU),
    String(N),
    String(SPIN_MS),
  ], { stdin: "piped" });
  await child.waitForOutput(/^waiter \d+$/m);
  const pid = Number(child.stdout.match(/^waiter (\d+)$/m)![1]);
  const run = async (): Promise<number[]> => {
    await child.write("go\n");
    await child.closeStdin();
    const out = await child.wait();
    assertEquals(out.code, 0, `workload failed: ${out.stderr}`);
    return out.stdout.match(/^waits_us (.*)$/m)![1].split(",").map(Number);
  };
  return { pid, spinner: child.pid, run, child };
}

interface Line {
  comm: string;
  tid: number;
  lat: number;
  prevComm?: string;
  prevTid?: number;
}

function parse(stdout: string, previous: boolean): Line[] {
  const lines = stdout.split("\n");
  assert(READY.test(lines[0]), stdout);
  const heading = previous
    ? /^TIME +COMM +TID +LAT\(us\) PREV COMM +PREV TID *$/
    : /^TIME +COMM +TID +LAT\(us\)$/;
  assert(heading.test(lines[1]), lines[1]);
  return lines.slice(2).filter((l) => l !== "").map((l) => {
    const m = l.match(/^(\d\d:\d\d:\d\d) (.{16}) (\d+) +(\d+)(?: (.{16}) (\d+) *)?$/);
    assert(m, `bad line '${l}'`);
    return {
      comm: m[2].trimEnd(),
      tid: Number(m[3]),
      lat: Number(m[4]),
      prevComm: m[5]?.trimEnd(),
      prevTid: m[6] === undefined ? undefined : Number(m[6]),
    };
  });
}

/**
 * Every latency has its own measured wait that holds it: at least SPIN_MS
 * (the spinner runs that long after sending, so the waiter waits at least
 * that), at most the wait the workload measured (which also holds what
 * happens after the switch-in, up to its read) plus `margin`; at most
 * `missed` waits left over. Sorted, each latency takes the smallest wait
 * that can hold it.
 */
function assertMatches(
  lats: number[],
  waits: number[],
  margin: number,
  missed: number,
  what: string,
) {
  const left = [...waits].sort((x, y) => x - y);
  const shown = `latencies ${[...lats].sort((x, y) => x - y).join(",")}, waits ${left.join(",")}`;
  for (const lat of [...lats].sort((x, y) => x - y)) {
    assert(lat >= SPIN_MS * 1000 * 0.99, `${what}: ${lat} us is shorter than the spin: ${shown}`);
    const i = left.findIndex((w) => lat <= w * (1 + margin));
    assert(i >= 0, `${what}: ${lat} us is longer than any measured wait left: ${shown}`);
    left.splice(i, 1);
  }
  assert(left.length <= missed, `${what}: waits not shown: ${shown}`);
}

kernelTest(
  "runqslower -p/-t WAITER: one line per long wait with its latency, as libbpf-tools runqslower",
  async () => {
    const { pid, spinner, run, child } = await startWorkload();
    const before = await ourPrograms();
    const byPid = new ToolProcess("runqslower", ["-p", String(pid)]);
    const byTid = new ToolProcess("runqslower", ["-P", "-t", String(pid)]);
    const json = new ToolProcess("runqslower", ["--json", "-p", String(pid), "15000"]);
    const ref = new ReferenceTool(RUNQSLOWER, ["-p", String(pid)]);
    const all = [byPid, byTid, json, ref];
    try {
      await byPid.waitForOutput(/LAT\(us\)/);
      await byTid.waitForOutput(/PREV TID/);
      await ref.waitForOutput(/LAT\(us\)/);
      await waitForPrograms("runqslow_switch", before + 3);
      const waits = await run();
      assertEquals(waits.length, N + 1);
      const long = waits.filter((w) => w > 10000);
      assertEquals(long.length, N, `the workload's waits: ${waits.join(",")}`);
      await new Promise((r) => setTimeout(r, 300)); // the last lines through the buffers
      const [p, t, j, r] = await Promise.all(all.map((x) => x.stop()));
      for (const x of [p, t, j, r]) assertEquals(x.code, 0, x.stderr);

      const mine = parse(p.stdout, false);
      for (const l of mine) {
        assertEquals(l.tid, pid);
        assertEquals(l.comm, "python3");
        assert(l.lat > 10000, `${l.lat} us is under the threshold`);
      }
      assertMatches(mine.map((l) => l.lat), long, 0.02, 1, "-p");

      // -t: the same waits (one thread); -P adds the task that ran before.
      const perTid = parse(t.stdout, true);
      assertDeepEqual(perTid.map((l) => l.tid), mine.map((l) => l.tid));
      assertMatches(perTid.map((l) => l.lat), long, 0.02, 1, "-t");
      assert(perTid.every((l) => l.prevTid !== undefined && l.prevComm !== ""), t.stdout);
      // Mostly the spinner ran before the waiter (unless another task came in between).
      assert(
        perTid.some((l) => l.prevTid === spinner),
        `spinner ${spinner} never prev:\n${t.stdout}`,
      );

      // --json with min_us 15000: the same long waits, numbers as numbers.
      const objs = j.stdout.trim().split("\n").filter((l) => l).map((l) => JSON.parse(l));
      assert(objs.every((o) => o.tid === pid && o.comm === "python3"), j.stdout);
      assertMatches(objs.map((o) => o.latencyUs), long, 0.02, 1, "--json");

      // libbpf-tools runqslower saw the same waits.
      const theirs = r.stdout.split("\n").slice(2).filter((l) => l).map((l) => {
        const f = l.trim().split(/\s+/);
        return { tid: Number(f.at(-2)), lat: Number(f.at(-1)) };
      });
      assert(theirs.every((x) => x.tid === pid), r.stdout);
      assert(
        Math.abs(theirs.length - mine.length) <= 1,
        `ours:\n${p.stdout}\nlibbpf-tools:\n${r.stdout}`,
      );
      // The same truth holds for theirs; and wait for wait, the two agree within 2%.
      assertMatches(theirs.map((x) => x.lat), long, 0.02, 1, "libbpf-tools");
      if (theirs.length === mine.length) {
        const a = theirs.map((x) => x.lat).sort((x, y) => x - y);
        const b = mine.map((l) => l.lat).sort((x, y) => x - y);
        a.forEach((lat, i) =>
          assert(Math.abs(lat - b[i]) <= b[i] * 0.02, `libbpf-tools ${a}, ours ${b}`)
        );
      }
    } finally {
      for (const x of all) x.killTree();
      child.killTree();
    }
    await waitFor(async () => (await ourPrograms()) === before, 3000, "runqslower to unload");
  },
);

for (
  const [args, pattern] of [
    [["-p", "1", "-t", "1"], /^runqslower: -p and -t cannot be used together/],
    [["-1"], /^runqslower: (unknown option '-1'|invalid argument '-1': negative)/],
    [["x"], /^runqslower: invalid min_us 'x': not an integer/],
    [["1", "2"], /^runqslower: unrecognized positional argument: '2'/],
    [["-p", "0"], /^runqslower: invalid PID '0': must be at least 1/],
  ] as [string[], RegExp][]
) {
  Deno.test(`runqslower ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("runqslower", args);
    assertEquals(code, 2, stderr);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(pattern.test(stderr), stderr);
  });
}
