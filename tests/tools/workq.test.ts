/**
 * workq against work whose truth is known:
 * - each write to /proc/sys/vm/stat_refresh runs refresh_vm_stats once on
 *   every online CPU (schedule_on_each_cpu), so N writes are exactly
 *   N x CPUs executions;
 * - writes with fsync and a sync on a loop-mounted ext4 run the loop
 *   driver's worker, ext4's unwritten-extent conversion and writeback work.
 * A text workq, a --json workq and a bpftrace one-liner on the same
 * tracepoint watch the same workload; counts must agree (tolerance: other
 * engineers' tests may use loop devices at the same time, and the three
 * start and stop a few ms apart: max(2, 10%) for the loop/ext4 functions,
 * exact for refresh_vm_stats, which nothing else runs).
 */
import { equal as assertEquals, ok as assert } from "node:assert/strict";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
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
class BpftraceCount {
  readonly child: Deno.ChildProcess;
  stdout = "";
  readonly done: Promise<void>;
  constructor() {
    const child = new Deno.Command("bpftrace", {
      args: ["-e", "t:workqueue:workqueue_execute_end { @[ksym(args->function)] = count(); }"],
      stdout: "piped",
      stderr: "null",
    }).spawn();
    this.child = child;
    this.done = (async () => {
      for await (const t of child.stdout.pipeThrough(new TextDecoderStream())) this.stdout += t;
      await child.status;
    })();
  }
  counts(): Map<string, number> {
    return new Map(
      [...this.stdout.matchAll(/^@\[(.+)\]: (\d+)$/gm)].map((m) => [m[1], Number(m[2])]),
    );
  }
}

/** True once `bpftool perf show` lists a BPF attachment made by process `pid`. */
async function bpftraceAttached(pid: number): Promise<boolean> {
  const out = await new Deno.Command("bpftool", { args: ["-j", "perf", "show"], stdout: "piped" })
    .output();
  const links = JSON.parse(new TextDecoder().decode(out.stdout) || "[]") as { pid: number }[];
  return links.some((l) => l.pid === pid);
}

function near(a: number, b: number): boolean {
  return Math.abs(a - b) <= Math.max(2, 0.1 * Math.max(a, b));
}

Deno.test(
  kernelTest("workq: stat_refresh and loop ext4 writes, text = json = bpftrace"),
  async () => {
    assertEquals(await ourPrograms(), 0, "workq programs loaded before the test");
    const fs = await makeLoopExt4(64);
    const cpus = onlineCpus();
    const text = new ToolProcess("workq", []);
    const json = new ToolProcess("workq", ["--json"]);
    const bt = new BpftraceCount();
    try {
      await text.waitForOutput(/^Tracing workqueue request latencies\. Ctrl-C to end\.$/m);
      await waitFor(async () => (await ourPrograms()) === 4, 15000, "both workq instances");
      // bpftrace prints "Attaching 1 probe..." before it attaches: wait until
      // the kernel lists its perf-event attachment.
      await waitFor(() => /Attaching 1 probe/.test(bt.stdout), 15000, "bpftrace to start");
      await waitFor(() => bpftraceAttached(bt.child.pid), 15000, "bpftrace to attach");

      for (let i = 0; i < STAT_REFRESH_WRITES; i++) {
        Deno.writeTextFileSync("/proc/sys/vm/stat_refresh", "1");
      }
      await run("dd", "if=/dev/zero", `of=${fs.mnt}/data`, "bs=1M", "count=16", "conv=fsync");
      await run("sync");
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      for (const p of [text, json]) p.kill("SIGINT");
      bt.child.kill("SIGINT");
      await Promise.all([text.finish(), json.finish(), bt.done]);
      await fs.cleanup();
    }
    const t = await text.finish(), j = await json.finish();
    assertEquals(t.code, 0, t.stderr);
    assertEquals(j.code, 0, j.stderr);
    const fromText = parseText(t.stdout), fromJson = parseJson(j.stdout), fromBt = bt.counts();

    // Exact truth: N writes x online CPUs.
    const refresh = STAT_REFRESH_WRITES * cpus;
    assertEquals(total(fromText.get("refresh_vm_stats")), refresh, t.stdout);
    assertEquals(total(fromJson.get("refresh_vm_stats")), refresh);
    assertEquals(fromBt.get("refresh_vm_stats"), refresh, bt.stdout);
    const slowest = Math.max(...fromText.get("refresh_vm_stats")!.keys());
    assert(slowest <= 15, `refresh_vm_stats ran in under 8 ms each (bucket ${slowest})`);

    // The loop worker, ext4 end-of-I/O work and writeback: present, and agreeing.
    const loop = fromText.has("loop_rootcg_workfn") ? "loop_rootcg_workfn" : "loop_workfn";
    for (const fn of [loop, "ext4_end_io_rsv_work", "wb_workfn"]) {
      const n = total(fromText.get(fn));
      assert(n >= 1, `${fn} ran (text output has ${[...fromText.keys()].join(", ")})`);
      assert(near(n, total(fromJson.get(fn))), `${fn}: text ${n}, json ${total(fromJson.get(fn))}`);
      assert(near(n, fromBt.get(fn) ?? 0), `${fn}: workq ${n}, bpftrace ${fromBt.get(fn)}`);
    }
    // 16 MB written through the loop device: more than a handful of I/Os.
    assert(total(fromText.get(loop)) >= 2, `${loop}: ${total(fromText.get(loop))}`);
    assert(total(fromText.get("ext4_end_io_rsv_work")) >= 2);

    // Every line fits in 80 columns. The two instances time the same executions
    // but each with its own clock reads, a few hundred ns apart: a ~1 us
    // function's executions move freely between [0] and [1], so compare the
    // cumulative counts from [1] on (a bucket bound off by one in either
    // output would shift them all).
    assert(t.stdout.split("\n").every((l) => l.length < 80));
    const a = fromText.get("refresh_vm_stats")!, b = fromJson.get("refresh_vm_stats")!;
    let cumA = 0, cumB = 0;
    for (let i = 1; i < 40; i++) {
      cumA += a.get(i) ?? 0;
      cumB += b.get(i) ?? 0;
      if (i === 1) continue;
      assert(Math.abs(cumA - cumB) <= 0.2 * refresh, `bucket ${i}: text ${[...a]} json ${[...b]}`);
    }
    await waitFor(async () => (await ourPrograms()) === 0, 3000, "workq programs to unload");
  },
);

Deno.test(kernelTest("workq -T 1 1: timestamp line, then exits and unloads"), async () => {
  const { code, stdout, stderr } = await runToolOnce("workq", ["-T", "1", "1"]);
  assertEquals(code, 0, stderr);
  const lines = stdout.split("\n");
  assertEquals(lines[0], "Tracing workqueue request latencies. Ctrl-C to end.");
  assertEquals(lines[1], "");
  assert(/^\d\d:\d\d:\d\d$/.test(lines[2]), stdout);
  await waitFor(async () => (await ourPrograms()) === 0, 3000, "workq programs to unload");
});

Deno.test(kernelTest("workq 2147484 1: a long interval waits (no timer overflow)"), async () => {
  const p = new ToolProcess("workq", ["2147484", "1"]);
  await p.waitForOutput(/Ctrl-C to end/);
  await new Promise((r) => setTimeout(r, 1500));
  assertEquals(p.stdout, "Tracing workqueue request latencies. Ctrl-C to end.\n", "no report yet");
  p.kill("SIGINT");
  const { code, stdout, stderr } = await p.finish();
  assertEquals(code, 0, stderr);
  assertEquals(stderr, "", "no runtime warning");
  assert(stdout.startsWith("Tracing workqueue request latencies. Ctrl-C to end.\n\n"), stdout);
  await waitFor(async () => (await ourPrograms()) === 0, 3000, "workq programs to unload");
});

Deno.test(kernelTest("workq: a thrown error after attach leaves nothing loaded"), async () => {
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
