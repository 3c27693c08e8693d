/**
 * workq against work whose truth is known:
 * - each write to /proc/sys/vm/stat_refresh runs refresh_vm_stats once on
 *   every online CPU (schedule_on_each_cpu), so N writes are exactly
 *   N x CPUs executions;
 * - writes with fsync and a sync on a loop-mounted ext4 run the loop
 *   driver's worker, ext4's unwritten-extent conversion and writeback work.
 * A text workq, a --json workq and a bpftrace one-liner on the same
 * tracepoint watch the same workload: each counts refresh_vm_stats exactly,
 * and each sees the loop/ext4/writeback functions run.
 */
import { equal as assertEquals, ok as assert } from "node:assert/strict";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { type Outcome, runOk, Spawned } from "../support/process.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";
import { runToolWithFault } from "../support/fault_after_attach.ts";
import { makeLoopExt4, run } from "./workq_loopfs.ts";

const STAT_REFRESH_WRITES = 25;

async function ourPrograms(): Promise<number> {
  return (await loadedProgramNames()).filter((n) => n.startsWith("workq_")).length;
}

function onlineCpus(): number {
  // "0-1" or "0,2-5"
  return Deno.readTextFileSync("/sys/devices/system/cpu/online").trim().split(",").reduce(
    (n, range) => {
      const [a, b] = range.split("-").map(Number);
      return n + (b === undefined ? 1 : b - a + 1);
    },
    0,
  );
}

/** Histogram buckets by bpftrace hist() index (1: [0], 2: [1], i: [2^(i-2), 2^(i-1))). */
type Buckets = Map<number, number>;

function labelIndex(label: string): number {
  if (label === "[0]") return 1;
  if (label === "[1]") return 2;
  const m = label.match(/^\[(\d+)([KMGT]?),/);
  if (!m) throw new Error(`unexpected bucket label ${label}`);
  const low = Number(m[1]) * 1024 ** " KMGT".indexOf(m[2] || " ");
  return Math.log2(low) + 2;
}

/** `@us[fn]: ` blocks of bpftrace hist() rows -> function -> buckets. */
function parseText(text: string): Map<string, Buckets> {
  const out = new Map<string, Buckets>();
  let current: Buckets | undefined;
  for (const line of text.split("\n")) {
    const head = line.match(/^@us\[(.+)\]: $/);
    if (head) {
      current = new Map();
      assert(!out.has(head[1]), `${head[1]} printed once`);
      out.set(head[1], current);
      continue;
    }
    const row = line.match(/^(\[[^\]]*[\])])\s+(\d+) \|[@ ]{52}\|$/);
    if (row && current) current.set(labelIndex(row[1]), Number(row[2]));
  }
  return out;
}

function parseJson(text: string): Map<string, Buckets> {
  const obj = JSON.parse(text.trim()) as {
    unit: string;
    histograms: {
      function: string;
      count: number;
      buckets: { low: number; high: number; count: number }[];
    }[];
  };
  assertEquals(obj.unit, "usecs");
  const out = new Map<string, Buckets>();
  for (const h of obj.histograms) {
    const b: Buckets = new Map();
    for (const { low, high, count } of h.buckets) {
      const index = low === 0 ? 1 : Math.log2(low) + 2;
      assertEquals(high, low <= 1 ? low : 2 * low - 1);
      b.set(index, count);
    }
    assertEquals(h.count, total(b), `${h.function}: count is the sum of its buckets`);
    out.set(h.function, b);
  }
  return out;
}

function total(b: Buckets | undefined): number {
  return b ? [...b.values()].reduce((x, y) => x + y, 0) : 0;
}

/** bpftrace counting work function executions on the same tracepoint. */
function bpftraceCount(): Spawned {
  return new Spawned("bpftrace", [
    "-e",
    "t:workqueue:workqueue_execute_end { @[ksym(args->function)] = count(); }",
  ]);
}

function countsOf(stdout: string): Map<string, number> {
  return new Map([...stdout.matchAll(/^@\[(.+)\]: (\d+)$/gm)].map((m) => [m[1], Number(m[2])]));
}

/** True once `bpftool perf show` lists a BPF attachment made by process `pid`. */
async function bpftraceAttached(pid: number): Promise<boolean> {
  const out = await runOk("bpftool", ["-j", "perf", "show"], { deadlineMs: 15_000 });
  const links = JSON.parse(out || "[]") as { pid: number }[];
  return links.some((l) => l.pid === pid);
}

/**
 * Each bucket index's cumulative count, from [1] on. Two tracers on one
 * tracepoint time the same execution with clock reads a few hundred ns apart
 * (the other's program runs in between), so a ~2 us function's executions
 * sit one bucket apart in the two: each instance's cumulative count at
 * bucket i must lie between the other's at i - 1 and at i + 1. A bucket
 * bound off by one in either output would break this everywhere.
 */
function withinOneBucket(a: Buckets, b: Buckets, slack: number): boolean {
  const cum = (h: Buckets, i: number) =>
    [...h].filter(([k]) => k >= 2 && k <= i).reduce((n, [, c]) => n + c, 0);
  for (let i = 2; i < 40; i++) {
    for (const [x, y] of [[a, b], [b, a]]) {
      if (cum(x, i) + slack < cum(y, i - 1) || cum(x, i) > cum(y, i + 1) + slack) return false;
    }
  }
  return true;
}

// Truth from the workload: N writes to stat_refresh run refresh_vm_stats
// exactly N x CPUs times, and nothing else runs it. The loop device, ext4
// and writeback functions run for other processes on the machine too (other
// tests use loop devices), and the three tracers start and stop at
// different moments, so for those only the workload's lower bound holds in
// each: they ran.
kernelTest("workq: stat_refresh and loop ext4 writes, text = json = bpftrace", async () => {
  assertEquals(await ourPrograms(), 0, "workq programs loaded before the test");
  const fs = await makeLoopExt4(64);
  const cpus = onlineCpus();
  const text = new ToolProcess("workq", []);
  const json = new ToolProcess("workq", ["--json"]);
  const bt = bpftraceCount();
  let t, j, b;
  try {
    await text.waitForOutput(/^Tracing workqueue request latencies\. Ctrl-C to end\.$/m);
    await waitFor(async () => (await ourPrograms()) === 4, 15000, "both workq instances");
    // bpftrace prints "Attaching 1 probe..." before it attaches: wait until
    // the kernel lists its perf-event attachment.
    await bt.waitForOutput(/Attaching 1 probe/);
    await waitFor(() => bpftraceAttached(bt.pid), 15000, "bpftrace to attach");

    for (let i = 0; i < STAT_REFRESH_WRITES; i++) {
      Deno.writeTextFileSync("/proc/sys/vm/stat_refresh", "1");
    }
    await run("dd", "if=/dev/zero", `of=${fs.mnt}/data`, "bs=1M", "count=16", "conv=fsync");
    await run("sync");
  } finally {
    // Each must exit on SIGINT within the grace period, or is killed and fails the test.
    [t, j, b] = await Promise.allSettled([text.stop(), json.stop(), bt.stop()]);
    await fs.cleanup();
  }
  for (const r of [t, j, b]) if (r.status === "rejected") throw r.reason;
  const [tOut, jOut, bOut] = [t, j, b].map((r) => (r as PromiseFulfilledResult<Outcome>).value);
  assertEquals(tOut.code, 0, tOut.stderr);
  assertEquals(jOut.code, 0, jOut.stderr);
  assertEquals(bOut.code, 0, bOut.stderr);
  const fromText = parseText(tOut.stdout), fromJson = parseJson(jOut.stdout);
  const fromBt = countsOf(bOut.stdout);

  const refresh = STAT_REFRESH_WRITES * cpus;
  assertEquals(total(fromText.get("refresh_vm_stats")), refresh, tOut.stdout);
  assertEquals(total(fromJson.get("refresh_vm_stats")), refresh, jOut.stdout);
  assertEquals(fromBt.get("refresh_vm_stats"), refresh, bOut.stdout);
  const slowest = Math.max(...fromText.get("refresh_vm_stats")!.keys());
  assert(slowest <= 15, `refresh_vm_stats ran in under 8 ms each (bucket ${slowest})`);

  const loop = fromText.has("loop_rootcg_workfn") ? "loop_rootcg_workfn" : "loop_workfn";
  for (const fn of [loop, "ext4_end_io_rsv_work", "wb_workfn"]) {
    const seen = `text has ${[...fromText.keys()].join(", ")}`;
    assert(total(fromText.get(fn)) >= 1, `${fn} ran: ${seen}`);
    assert(total(fromJson.get(fn)) >= 1, `${fn} ran (json): ${jOut.stdout}`);
    assert((fromBt.get(fn) ?? 0) >= 1, `${fn} ran (bpftrace): ${bOut.stdout}`);
  }

  assert(tOut.stdout.split("\n").every((l) => l.length < 80));
  const a = fromText.get("refresh_vm_stats")!, c = fromJson.get("refresh_vm_stats")!;
  assert(withinOneBucket(a, c, 2), `text ${[...a]} json ${[...c]}`);
  await waitFor(async () => (await ourPrograms()) === 0, 3000, "workq programs to unload");
});

kernelTest("workq -T 1 1: timestamp line, then exits and unloads", async () => {
  const { code, stdout, stderr } = await runToolOnce("workq", ["-T", "1", "1"]);
  assertEquals(code, 0, stderr);
  const lines = stdout.split("\n");
  assertEquals(lines[0], "Tracing workqueue request latencies. Ctrl-C to end.");
  assertEquals(lines[1], "");
  assert(/^\d\d:\d\d:\d\d$/.test(lines[2]), stdout);
  await waitFor(async () => (await ourPrograms()) === 0, 3000, "workq programs to unload");
});

kernelTest("workq 2147484 1: a long interval waits (no timer overflow)", async () => {
  const p = new ToolProcess("workq", ["2147484", "1"]);
  await p.waitForOutput(/Ctrl-C to end/);
  await new Promise((r) => setTimeout(r, 1500));
  assertEquals(p.stdout, "Tracing workqueue request latencies. Ctrl-C to end.\n", "no report yet");
  const { code, stdout, stderr } = await p.stop();
  assertEquals(code, 0, stderr);
  assertEquals(stderr, "", "no runtime warning");
  assert(stdout.startsWith("Tracing workqueue request latencies. Ctrl-C to end.\n\n"), stdout);
  await waitFor(async () => (await ourPrograms()) === 0, 3000, "workq programs to unload");
});

kernelTest("workq: a thrown error after attach leaves nothing loaded", async () => {
  const { code, stderr } = await runToolWithFault("workq", ["1", "1"]);
  assertEquals(code, 1);
  assertEquals(stderr.trim().split("\n").length, 1, stderr);
  assert(/^workq: injected fault/.test(stderr), stderr);
  await waitFor(async () => (await ourPrograms()) === 0, 3000, "workq programs to unload");
});

for (
  const [args, pattern] of [
    [["-x"], /^workq: unknown option '-x'/],
    [["--pid", "1"], /^workq: unknown option '--pid'/],
    [["1", "2", "3"], /^workq: unrecognized positional argument: '3'/],
    [["0"], /^workq: invalid interval '0': must be at least 1/],
    [["1", "x"], /^workq: invalid count 'x': not an integer/],
    [["1", "99999999999999999999"], /^workq: invalid count '9+': too large/],
  ] as [string[], RegExp][]
) {
  Deno.test(`workq ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("workq", args);
    assertEquals(code, 2);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(pattern.test(stderr), stderr);
  });
}

Deno.test("workq --help: bcc-style USAGE and EXAMPLES, exit 0", async () => {
  const { code, stdout } = await runToolOnce("workq", ["--help"]);
  assertEquals(code, 0);
  assert(/^USAGE: workq /m.test(stdout), stdout);
  assert(/^EXAMPLES:/m.test(stdout), stdout);
  assert(stdout.split("\n").every((l) => l.length < 80), "help fits in 80 columns");
});
