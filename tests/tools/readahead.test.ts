/**
 * readahead against reads whose read-ahead is known, on a loop-mounted ext4:
 * - file A (32 MB) read sequentially to the end: every page is read ahead
 *   and used. The reader stops after 4 MB for 1.2 s: the pages read ahead
 *   beyond 4 MB by then are used at an age of 1-2 s.
 * - file B (8 MB), only its first 1 MB read: the first read-ahead window is
 *   the device's read_ahead_kb (2560 KB here: 640 pages), so 640 - 256
 *   pages are read ahead and never used.
 * The files' page cache is emptied by unmounting and mounting again, which
 * evicts exactly this file system's pages (echo 3 > drop_caches would make
 * every process on the machine re-read its files while we count).
 * Read-ahead is counted system-wide, so other processes add a little: the
 * bounds below are exact for our files, plus NOISE pages of tolerance in
 * the direction noise can go.
 */
import { equal as assertEquals, ok as assert } from "node:assert/strict";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { parseLog2Hists } from "../support/log2_hist_parse.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";
import { runToolWithFault } from "../support/fault_after_attach.ts";
import { makeLoopExt4, run } from "./workq_loopfs.ts";

const PAGE = 4096;
const A_PAGES = (32 << 20) / PAGE, B_READ_PAGES = (1 << 20) / PAGE;
/** Pages other processes may read ahead during the test (they only add). */
const NOISE = 1024;

async function ourPrograms(): Promise<number> {
  return (await loadedProgramNames()).filter((n) => n.startsWith("readahead_")).length;
}

interface Result {
  unused: number;
  total: number;
  /** log2 msec slots: slot i counts pages aged [2^i, 2^(i+1)) ms (slot 0: 0-1). */
  slots: number[];
}

function parseText(stdout: string): Result {
  const m = stdout.match(/^Readahead unused\/total pages: (\d+)\/(\d+)$/m);
  assert(m, stdout);
  const [h] = parseLog2Hists(stdout);
  assertEquals(h.unit, "msecs");
  return { unused: Number(m[1]), total: Number(m[2]), slots: h.counts };
}

function parseJson(stdout: string): Result {
  const obj = JSON.parse(stdout.trim());
  assertEquals(obj.unit, "msecs");
  return {
    unused: obj.unused,
    total: obj.total,
    slots: obj.buckets.map((b: { low: number; count: number }, i: number) => {
      assertEquals(b.low, i === 0 ? 0 : 2 ** i);
      return b.count;
    }),
  };
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

kernelTest(
  "readahead: sequential reads after eviction, unused and aged pages, text = json",
  async () => {
    assertEquals(await ourPrograms(), 0, "readahead programs loaded before the test");
    const fs = await makeLoopExt4(96);
    let text: ToolProcess | undefined, json: ToolProcess | undefined;
    let raPages = 0;
    try {
      await run("dd", "if=/dev/zero", `of=${fs.mnt}/a`, "bs=1M", "count=32", "conv=fsync");
      await run("dd", "if=/dev/zero", `of=${fs.mnt}/b`, "bs=1M", "count=8", "conv=fsync");
      const device = await fs.remount();
      const kb = await Deno.readTextFile(
        `/sys/block/${device.split("/").pop()}/queue/read_ahead_kb`,
      );
      raPages = Number(kb) * 1024 / PAGE;
      assert(raPages > B_READ_PAGES, `read_ahead_kb ${kb} is more than the 1 MB read`);

      text = new ToolProcess("readahead", []);
      json = new ToolProcess("readahead", ["--json"]);
      await text.waitForOutput(/^Tracing fs read-ahead \.\.\. Hit Ctrl-C to end\.$/m);
      await waitFor(async () => (await ourPrograms()) === 8, 15000, "both instances attached");

      await run(
        "sh",
        "-c",
        `(dd of=/dev/null bs=1M count=4 status=none; sleep 1.2; ` +
          `dd of=/dev/null bs=1M status=none) < ${fs.mnt}/a`,
      );
      await run("dd", `if=${fs.mnt}/b`, "of=/dev/null", "bs=1M", "count=1", "status=none");
    } finally {
      text?.kill("SIGINT");
      json?.kill("SIGINT");
      await Promise.all([text?.finish(), json?.finish()]);
      await fs.cleanup();
    }
    const t = await text!.finish(), j = await json!.finish();
    assertEquals(t.code, 0, t.stderr);
    assertEquals(j.code, 0, j.stderr);
    const r = parseText(t.stdout), rj = parseJson(j.stdout);
    const used = r.total - r.unused;
    const detail = `text:\n${t.stdout}`;

    // All of A and B's first window were read ahead; A and B's first MB were used.
    const bUnused = raPages - B_READ_PAGES;
    assert(r.total >= A_PAGES + raPages, `total ${r.total} >= ${A_PAGES + raPages}\n${detail}`);
    assert(r.total <= A_PAGES + raPages + NOISE, `total ${r.total}\n${detail}`);
    assert(used >= A_PAGES + B_READ_PAGES, `used ${used} >= ${A_PAGES + B_READ_PAGES}\n${detail}`);
    assert(used <= A_PAGES + B_READ_PAGES + NOISE, `used ${used}\n${detail}`);
    assert(r.unused >= bUnused, `unused ${r.unused} >= ${bUnused}\n${detail}`);
    assert(r.unused <= bUnused + NOISE, `unused ${r.unused}\n${detail}`);
    // The histogram counts the used pages, once each.
    assertEquals(sum(r.slots), used, detail);

    // Pages read ahead past 4 MB before the pause waited 1.2 s: at least one
    // async window (A's read-ahead runs a window ahead), at most two more.
    const aged = sum(r.slots.slice(10)); // >= 1024 ms
    assert(aged >= B_READ_PAGES && aged <= 2 * raPages + NOISE, `aged ${aged}\n${detail}`);
    // The rest were used within a fraction of a second of being read.
    const young = sum(r.slots.slice(0, 9)); // < 512 ms
    assert(young >= A_PAGES + B_READ_PAGES - 2 * raPages - NOISE, `young ${young}\n${detail}`);

    // JSON: the same counts (a second instance, same window, within NOISE).
    assertEquals(sum(rj.slots), rj.total - rj.unused);
    assert(Math.abs(rj.total - r.total) <= NOISE, `json total ${rj.total} vs ${r.total}`);
    assert(Math.abs(rj.unused - r.unused) <= NOISE, `json unused ${rj.unused} vs ${r.unused}`);
    assert(Math.abs(sum(rj.slots.slice(10)) - aged) <= NOISE, "json aged pages");
    assert(t.stdout.split("\n").every((l) => l.length < 80));
    await waitFor(async () => (await ourPrograms()) === 0, 3000, "readahead programs to unload");
  },
);

kernelTest("readahead -d 1: stops by itself, prints, unloads", async () => {
  const t0 = Date.now();
  const { code, stdout, stderr } = await runToolOnce("readahead", ["-d", "1"]);
  assertEquals(code, 0, stderr);
  assert(Date.now() - t0 < 10000);
  assert(/^Tracing fs read-ahead/.test(stdout), stdout);
  const m = stdout.match(/^Readahead unused\/total pages: (\d+)\/(\d+)$/m);
  assert(m, stdout);
  // As libbpf-tools' print_log2_hist: no histogram at all when no page was used.
  const used = Number(m[2]) - Number(m[1]);
  assertEquals(/^ +msecs +: count +distribution$/m.test(stdout), used > 0, stdout);
  await waitFor(async () => (await ourPrograms()) === 0, 3000, "readahead programs to unload");
});

kernelTest("readahead -d 2147484: a long duration waits (no timer overflow)", async () => {
  const p = new ToolProcess("readahead", ["-d", "2147484"]);
  await p.waitForOutput(/^Tracing fs read-ahead/);
  await new Promise((r) => setTimeout(r, 1500));
  assertEquals(p.stdout, "Tracing fs read-ahead ... Hit Ctrl-C to end.\n", "no report yet");
  p.kill("SIGINT");
  const { code, stdout, stderr } = await p.finish();
  assertEquals(code, 0, stderr);
  assertEquals(stderr, "", "no runtime warning");
  assert(/^Readahead unused\/total pages: \d+\/\d+$/m.test(stdout), stdout);
  await waitFor(async () => (await ourPrograms()) === 0, 3000, "readahead programs to unload");
});

kernelTest("readahead: a thrown error after attach leaves nothing loaded", async () => {
  const { code, stderr } = await runToolWithFault("readahead", ["-d", "1"]);
  assertEquals(code, 1);
  assertEquals(stderr.trim().split("\n").length, 1, stderr);
  assert(/^readahead: injected fault/.test(stderr), stderr);
  await waitFor(async () => (await ourPrograms()) === 0, 3000, "readahead programs to unload");
});

for (
  const [args, pattern] of [
    [["-x"], /^readahead: unknown option '-x'/],
    [["-d", "0"], /^readahead: invalid duration '0': must be at least 1/],
    [["-d", "abc"], /^readahead: invalid duration 'abc': not an integer/],
    [["-d", "-3"], /^readahead: invalid duration '-3': negative/],
    [["-d"], /^readahead: option '-d, --duration <value>' needs a value|needs a value/],
    [["5"], /^readahead: unrecognized positional argument: '5'/],
  ] as [string[], RegExp][]
) {
  Deno.test(`readahead ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("readahead", args);
    assertEquals(code, 2);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(pattern.test(stderr), stderr);
  });
}

Deno.test("readahead --help: bcc-style USAGE and EXAMPLES, exit 0", async () => {
  const { code, stdout } = await runToolOnce("readahead", ["--help"]);
  assertEquals(code, 0);
  assert(/^USAGE: readahead /m.test(stdout), stdout);
  assert(/^EXAMPLES:/m.test(stdout), stdout);
  assert(stdout.split("\n").every((l) => l.length < 80), "help fits in 80 columns");
});
