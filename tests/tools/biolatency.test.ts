/**
 * biolatency against block I/O whose truth is known: 48 O_DIRECT requests
 * (16 x 4 KiB and 8 x 64 KiB writes, the same reads) on a loop device made by
 * the test, each one request. Cross-checked with libbpf-tools biolatency run
 * at the same time. Tolerances: counts are exact (-d LOOP sees only the
 * workload's requests: the loop device does direct I/O to its backing file,
 * and nothing else uses it); latencies differ between tools by timing, so
 * only -Q against no -Q is compared bucket by bucket, as cumulative counts.
 */
import {
  deepEqual as assertDeepEqual,
  equal as assertEquals,
  ok as assert,
} from "node:assert/strict";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { type ParsedHist, parseLog2Hists, total } from "../support/log2_hist_parse.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";
import {
  LoopDevice,
  ReferenceTool,
  requestCount,
  runBlockWorkload,
} from "../support/block_io_workload.ts";

const N = requestCount(); // 48
const READY = /Tracing block device I\/O/;

async function ourPrograms(): Promise<number> {
  return (await loadedProgramNames()).filter((n) => n.startsWith("biolat_")).length;
}

async function waitForPrograms(n: number): Promise<void> {
  await waitFor(async () => (await ourPrograms()) === n, 15000, `${n} biolat_ programs loaded`);
}

async function assertNoneLoaded(): Promise<void> {
  // The kernel frees programs asynchronously (RCU) after the last fd closes.
  await waitFor(async () => (await ourPrograms()) === 0, 3000, "biolat_ programs to unload");
}

/** Stops a tool with Ctrl-C and checks it exited cleanly. */
async function stopTool(p: ToolProcess): Promise<string> {
  const { code, stdout, stderr } = await p.stop();
  assertEquals(code, 0, stderr);
  return stdout;
}

function cumulative(h: ParsedHist, slots: number): number[] {
  let sum = 0;
  return Array.from({ length: slots }, (_, i) => (sum += h.counts[i] ?? 0));
}

interface JsonHist {
  disk?: string;
  dev?: string;
  flags?: string;
  buckets: { low: number; high: number; count: number }[];
}

kernelTest(
  "biolatency -d LOOP: every request once, as libbpf-tools; -Q never lower; -D names it; --json = text",
  async () => {
    assertEquals(await ourPrograms(), 0, "biolat_ programs loaded before the test");
    // With an I/O scheduler every request is queued (inserted) before it is issued.
    const loop = await LoopDevice.create(32, "mq-deadline");
    const tools: ToolProcess[] = [];
    try {
      const d = ["-d", loop.name];
      const issue = new ToolProcess("biolatency", d);
      const queued = new ToolProcess("biolatency", [...d, "-Q"]);
      const perDisk = new ToolProcess("biolatency", [...d, "-m", "-D"]);
      const json = new ToolProcess("biolatency", [...d, "-m", "-D", "--json"]);
      tools.push(issue, queued, perDisk, json);
      const ref = new ReferenceTool("/usr/sbin/biolatency", d);
      for (const t of [issue, queued, perDisk]) await t.waitForOutput(READY);
      await ref.waitForOutput(READY);
      await waitForPrograms(2 + 3 + 2 + 2); // --json prints nothing until the end

      await runBlockWorkload(loop);

      const [issueOut, queuedOut, perDiskOut, jsonOut] = await Promise.all(
        tools.map(stopTool),
      );
      const refOut = (await ref.stop()).stdout;

      const [hIssue] = parseLog2Hists(issueOut);
      const [hQueued] = parseLog2Hists(queuedOut);
      const [hRef] = parseLog2Hists(refOut);
      assert(hIssue && hQueued && hRef, `${issueOut}\n${queuedOut}\n${refOut}`);
      assertEquals(hIssue.unit, "usecs");
      assertEquals(total(hIssue), N, issueOut);
      assertEquals(total(hRef), N, `libbpf-tools biolatency saw: ${refOut}`);
      assertEquals(total(hQueued), N, queuedOut);

      // Each request's queued latency includes its issue latency: at every
      // bucket, no more -Q requests than plain ones are at or below it.
      const slots = Math.max(hIssue.counts.length, hQueued.counts.length);
      const cIssue = cumulative(hIssue, slots), cQueued = cumulative(hQueued, slots);
      cIssue.forEach((c, i) =>
        assert(cQueued[i] <= c, `-Q lower than issue at slot ${i}:\n${issueOut}\n${queuedOut}`)
      );

      // -D: one histogram, headed by the loop device's name (libbpf-tools' layout).
      const disks = parseLog2Hists(perDiskOut);
      assertEquals(disks.length, 1, perDiskOut);
      assertEquals(disks[0].heading, `disk = ${loop.name}`);
      assertEquals(disks[0].unit, "msecs");
      assert(perDiskOut.includes(`\n\ndisk = ${loop.name}\t\n     msecs `), perDiskOut);
      assertEquals(total(disks[0]), N);

      // --json: the same histogram, in numbers.
      const lines = jsonOut.trim().split("\n");
      assertEquals(lines.length, 1, jsonOut);
      const doc = JSON.parse(lines[0]) as { unit: string; histograms: JsonHist[] };
      assertEquals(doc.unit, "msecs");
      assertEquals(doc.histograms.length, 1, jsonOut);
      const [{ disk, dev, buckets }] = doc.histograms;
      assertEquals(disk, loop.name);
      assertEquals(dev, Deno.readTextFileSync(`/sys/block/${loop.name}/dev`).trim());
      const jsonCounts = buckets.map((b) => b.count);
      assertDeepEqual(
        jsonCounts.slice(0, disks[0].counts.length),
        disks[0].counts,
        `${jsonOut}\n${perDiskOut}`,
      );
      assertEquals(jsonCounts.reduce((a, b) => a + b, 0), N);
    } finally {
      for (const t of tools) t.killTree();
      await Promise.allSettled(tools.map((t) => t.wait()));
      await loop.remove();
    }
    await assertNoneLoaded();
  },
);

kernelTest(
  "biolatency -c CG and -F: the workload's cgroup sees all, an empty one none",
  async () => {
    const root = "/sys/fs/cgroup/unified";
    const inside = `${root}/bpftk-biolat-in`, empty = `${root}/bpftk-biolat-empty`;
    for (const dir of [inside, empty]) Deno.mkdirSync(dir, { recursive: true });
    const loop = await LoopDevice.create(32);
    try {
      const d = ["-d", loop.name];
      const filtered = new ToolProcess("biolatency", [...d, "-c", inside]);
      const other = new ToolProcess("biolatency", [...d, "-c", empty]);
      const flags = new ToolProcess("biolatency", [...d, "-F"]);
      for (const t of [filtered, other, flags]) await t.waitForOutput(READY);
      await runBlockWorkload(loop, undefined, { cgroup: inside });
      const [f, o, fl] = await Promise.all([filtered, other, flags].map(stopTool));

      assertEquals(total(parseLog2Hists(f)[0]), N, f);
      assertEquals(parseLog2Hists(o).length, 0, `the empty cgroup issued nothing: ${o}`);

      // -F: headings name the operation last; reads and writes are half each.
      const byOp = { Read: 0, Write: 0 } as Record<string, number>;
      for (const h of parseLog2Hists(fl)) {
        const m = h.heading?.match(/^flags = ([A-Za-z-]*?)(Read|Write)$/);
        assert(m, `unexpected heading '${h.heading}' in:\n${fl}`);
        byOp[m[2]] += total(h);
      }
      assertDeepEqual(byOp, { Read: N / 2, Write: N / 2 }, fl);
    } finally {
      await loop.remove();
      for (const dir of [inside, empty]) {
        await waitFor(
          () => {
            try {
              Deno.removeSync(dir);
              return true;
            } catch {
              return false;
            }
          },
          3000,
          `removal of ${dir}`,
        );
      }
    }
    await assertNoneLoaded();
  },
);

kernelTest(
  "biolateness -mT 1 2: the seed's spelling runs biolatency, with timestamps",
  async () => {
    const loop = await LoopDevice.create(32);
    try {
      const p = new ToolProcess("biolateness", ["-mT", "-d", loop.name, "1", "2"]);
      await p.waitForOutput(READY);
      await runBlockWorkload(loop);
      const { code, stdout, stderr } = await p.finish();
      assertEquals(code, 0, stderr);
      assertEquals(stdout.match(/^\d\d:\d\d:\d\d\s*$/gm)?.length, 2, stdout);
      const hs = parseLog2Hists(stdout);
      assert(hs.every((h) => h.unit === "msecs"), stdout);
      assertEquals(hs.reduce((n, h) => n + total(h), 0), N, stdout);
    } finally {
      await loop.remove();
    }
    const help = await runToolOnce("biolateness", ["--help"]);
    assertEquals(help.code, 0);
    assert(/^USAGE: biolateness /m.test(help.stdout), help.stdout);
  },
);

kernelTest("biolatency: SIGINT prints and unloads all three -Q programs", async () => {
  const p = new ToolProcess("biolatency", ["-Q", "-D"]);
  await p.waitForOutput(READY);
  assertEquals(await ourPrograms(), 3, "insert, issue and complete are loaded");
  const out = await stopTool(p);
  assert(out.startsWith("Tracing block device I/O... Hit Ctrl-C to end.\n"), out);
  await assertNoneLoaded();
});

kernelTest("biolatency -c with no such cgroup: usage error, one line, exit 2", async () => {
  const { code, stdout, stderr } = await runToolOnce("biolatency", ["-c", "/nonexistent/cg"]);
  assertEquals(code, 2, stderr);
  assertEquals(stdout, "");
  assertEquals(stderr.trim().split("\n").length, 1, stderr);
  assert(/^biolatency: -c \/nonexistent\/cg: no such cgroup/.test(stderr), stderr);
  await assertNoneLoaded();
});

kernelTest("biolatency -d nosuchdisk: usage error before anything is loaded", async () => {
  const { code, stdout, stderr } = await runToolOnce("biolatency", [
    "-d",
    "nosuchdisk",
    "1",
    "1",
  ]);
  assertEquals(code, 2, stderr);
  assertEquals(stdout, "");
  assertEquals(stderr, "biolatency: -d nosuchdisk: no such disk (see 'biolatency --help')\n");
  await assertNoneLoaded();
});

for (
  const [args, pattern] of [
    [["-d", "nosuchdisk"], /^biolatency: -d nosuchdisk: no such disk/],
    [["-d", ""], /^biolatency: invalid -d: empty disk name/],
    [["-c", "/tmp"], /^biolatency: -c \/tmp: not a cgroup v2 directory/],
    [["1", "99999999999999999999"], /^biolatency: invalid count '9+': too large/],
    [["-x"], /^biolatency: unknown option '-x'/],
    [["-d"], /^biolatency: option '-d, --disk <value>' needs a value|^biolatency: .*-d/],
    [["1", "2", "3"], /^biolatency: unrecognized positional argument: '3'/],
    [["0"], /^biolatency: invalid interval '0': must be at least 1/],
  ] as [string[], RegExp][]
) {
  Deno.test(`biolatency ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("biolatency", args);
    assertEquals(code, 2, stderr);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(pattern.test(stderr), stderr);
  });
}

Deno.test("biolatency --help: bcc-style USAGE and EXAMPLES under 80 columns, exit 0", async () => {
  const { code, stdout } = await runToolOnce("biolatency", ["--help"]);
  assertEquals(code, 0);
  assert(/^USAGE: biolatency /m.test(stdout), stdout);
  assert(/^EXAMPLES:/m.test(stdout), stdout);
  assert(stdout.split("\n").every((l) => l.length < 80), "help fits in 80 columns");
});
