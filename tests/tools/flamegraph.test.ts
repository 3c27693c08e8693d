/**
 * flamegraph: folded stacks -> SVG. The file is well-formed XML whatever the
 * frame names hold; widths are proportional to counts; and, rendered in
 * headless Chromium (Debian's `chromium`, driven by npm playwright-core),
 * the frames are on screen in their colors, a click zooms to a frame, hover
 * names it with its share, and search highlights and measures matches.
 */
import {
  deepEqual,
  equal as assertEquals,
  match as assertMatch,
  ok as assert,
} from "node:assert/strict";
import { parseFolded } from "../../lib/format/folded.ts";
import { renderFlameGraph } from "../../lib/format/flamegraph.ts";
import { commandTest, kernelTest } from "../support/kernel.ts";
import { run } from "../support/process.ts";
import { decodePng, pixel } from "../support/png.ts";
import { REPO_ROOT } from "../support/tool_process.ts";

const FOLDED = [
  "app;main;compute;hot 60",
  "app;main;compute;cold 20",
  "app;main;io_wait 15",
  "app;other 5",
].join("\n") + "\n";
const WIDTH = 1200, XPAD = 10, PLOT = WIDTH - 2 * XPAD;
const CHROMIUM = "/usr/bin/chromium";

/** Checks well-formedness with a strict XML parser (Python's expat). */
async function assertWellFormed(svg: string): Promise<void> {
  const out = await run("python3", [
    "-c",
    "import sys, xml.dom.minidom as m; m.parseString(sys.stdin.buffer.read())",
  ], { input: svg });
  assertEquals(out.code, 0, `not well-formed XML: ${out.stderr}`);
}

/** The frames as drawn: name, x/width/y in px, count and fill. */
function frames(svg: string) {
  const re =
    /<g class="frame" data-x="([\d.]+)" data-w="([\d.]+)" data-d="(\d+)" data-name="([^"]*)"><title>[^<]*<\/title><rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="[\d.]+" fill="([^"]+)"/g;
  return [...svg.matchAll(re)].map((m) => ({
    name: m[4],
    count: Number(m[2]),
    depth: Number(m[3]),
    x: Number(m[5]),
    y: Number(m[6]),
    width: Number(m[7]),
    fill: m[8],
  }));
}

async function runFlamegraph(args: string[], input: string) {
  return await run("deno", ["run", `${REPO_ROOT}tools/flamegraph.ts`, ...args], { input });
}

Deno.test("flamegraph: one box per tree node, widths proportional to counts", async () => {
  const svg = renderFlameGraph(parseFolded(FOLDED), { width: WIDTH });
  await assertWellFormed(svg);
  const f = frames(svg);
  deepEqual(f.map((b) => `${b.name}:${b.count}`), [
    "all:100",
    "app:100",
    "main:95",
    "compute:80",
    "cold:20",
    "hot:60",
    "io_wait:15",
    "other:5",
  ]);
  for (const b of f) {
    assert(Math.abs(b.width - PLOT * b.count / 100) <= 0.05, `${b.name} is ${b.width} px wide`);
  }
  // Siblings sorted by name, side by side; children on top of their parent.
  const by = Object.fromEntries(f.map((b) => [b.name, b]));
  assertEquals(by.cold.x, by.compute.x);
  assert(Math.abs(by.hot.x - (by.cold.x + by.cold.width)) <= 0.1);
  assert(by.hot.y < by.compute.y && by.compute.y < by.main.y && by.main.y < by.all.y);
  // The same function gets the same color every time.
  assertEquals(frames(renderFlameGraph(parseFolded(FOLDED)))[5].fill, by.hot.fill);
});

Deno.test("flamegraph: hostile frame names stay text, the file stays well-formed", async () => {
  const names = ['<script>alert("x")</script>', "a&b", "ctl\x01\x1b[31m", "'q'", "]]>", "\ud800"];
  const svg = renderFlameGraph(names.map((n, i) => ({ frames: ["app", n], count: i + 1 })));
  await assertWellFormed(svg);
  assert(!svg.includes("<script>alert"), "markup in a name is escaped");
  assertEquals(svg.match(/<script/g)?.length, 1, "only our own script");
});

Deno.test("flamegraph.ts: stdin to stdout with no permissions; options; icicle", async () => {
  const plain = await runFlamegraph([], FOLDED);
  assertEquals(plain.code, 0, plain.stderr);
  assertEquals(plain.stdout, renderFlameGraph(parseFolded(FOLDED)));

  const icicle = await runFlamegraph(
    ["--inverted", "--title", "Off-CPU", "--countname", "us", "--colors", "io", "--width", "800"],
    FOLDED,
  );
  assertEquals(icicle.code, 0, icicle.stderr);
  assertMatch(icicle.stdout, /<text id="title"[^>]*>Off-CPU<\/text>/);
  assertMatch(icicle.stdout, /<title>hot \(60 us, 60\.00%\)<\/title>/);
  assertMatch(icicle.stdout, /width="800"/);
  const f = frames(icicle.stdout);
  const all = f.find((b) => b.name === "all")!, hot = f.find((b) => b.name === "hot")!;
  assert(all.y < hot.y, "icicle: the root is on top");
  const [r, g, b] = hot.fill.match(/\d+/g)!.map(Number);
  assert(b > r && b > g, `io palette is blue: ${hot.fill}`);

  // --reverse is flamegraph.pl's: each stack reversed, the leaf functions at the root.
  const reversed = await runFlamegraph(["--reverse"], "main;parent;leaf 5\n");
  assertEquals(reversed.code, 0, reversed.stderr);
  const rf = frames(reversed.stdout);
  const y = (name: string) => rf.find((b) => b.name === name)!.y;
  assert(y("all") > y("leaf") && y("leaf") > y("parent") && y("parent") > y("main"), "reversed");

  const bad = await runFlamegraph(["--colors", "nope"], FOLDED);
  assertEquals(bad.code, 2);
  assertMatch(bad.stderr, /^flamegraph: unknown palette 'nope'/);
  const empty = await runFlamegraph([], "no stacks here\n");
  assertEquals(empty.code, 1);
  assertEquals(empty.stderr, "flamegraph: no stack counts in the input\n");
});

kernelTest("profile -af | flamegraph: the seed's recipe, no Perl", async () => {
  const out = await run("bash", [
    "-c",
    // A workload that lives in the kernel (copying /dev/zero), so kernel frames are
    // sampled whatever else runs on the machine; killed once the profile is done.
    `set -o pipefail; timeout 60 dd if=/dev/zero of=/dev/null bs=1M 2>/dev/null & DD=$!; ` +
    `deno run -A ${REPO_ROOT}tools/profile.ts -af -I -F 99 1 | ` +
    `deno run ${REPO_ROOT}tools/flamegraph.ts --title CPU; rc=$?; kill $DD; exit $rc`,
  ]);
  const svg = out.stdout;
  assertEquals(out.code, 0, out.stderr);
  await assertWellFormed(svg);
  const f = frames(svg);
  assert(f.length > 3, "frames drawn");
  assert(f.some((b) => b.name.endsWith("_[k]")), "kernel frames annotated");
  assertEquals(f[0].name, "all");
});

commandTest(
  "flamegraph: in Chromium the frames show, click zooms, hover names, search measures",
  async () => {
    // Not in deno.json's import map (owned elsewhere): pinned here. Loaded only by this test.
    // deno-lint-ignore no-import-prefix
    const { chromium } = await import("npm:playwright-core@1.65.1");
    const dir = await Deno.makeTempDir({ prefix: "bpftk-flame-" });
    const svg = renderFlameGraph(parseFolded(FOLDED), { width: WIDTH });
    const height = Number(svg.match(/height="(\d+)"/)![1]);
    await Deno.writeTextFile(`${dir}/fg.svg`, svg);
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu"],
    });
    try {
      const page = await browser.newPage({ viewport: { width: WIDTH, height } });
      const errors: string[] = [];
      page.on("pageerror", (e: Error) => errors.push(e.message));
      await page.goto(`file://${dir}/fg.svg`);
      const frame = (name: string) => page.locator(`g.frame[data-name="${name}"]`);
      const rectWidth = async (name: string) =>
        Number(await frame(name).locator("rect").getAttribute("width"));
      const drawn = frames(svg);
      const hot = drawn.find((b) => b.name === "hot")!;
      const compute = drawn.find((b) => b.name === "compute")!;
      const io = drawn.find((b) => b.name === "io_wait")!;

      // The screenshot shows each frame in its color.
      const shot = decodePng(await page.screenshot());
      for (const b of drawn) {
        if (b.name === "all") continue;
        // Left part of the box: labels start at +3 px, so sample just inside the left edge.
        assertEquals(pixel(shot, b.x + 1.5, b.y + 2), b.fill, `${b.name} on screen`);
      }

      // Hover names the frame with its count and share.
      await frame("hot").hover();
      assertEquals(
        await page.locator("#details").textContent(),
        "Function: hot (60 samples, 60.00%)",
      );

      // Click zooms: compute fills the width, its children scale, others hide.
      await frame("compute").click();
      assertEquals(await rectWidth("compute"), PLOT);
      assert(Math.abs(await rectWidth("hot") - PLOT * 60 / 80) < 0.1);
      assertEquals(await rectWidth("main"), PLOT, "ancestors stay, full width");
      assertEquals(await frame("io_wait").isVisible(), false);
      assert(await page.locator("#unzoom").isVisible());
      const zoomed = decodePng(await page.screenshot());
      // Where io_wait was drawn, compute's row now shows compute; hot now reaches the right side.
      assertEquals(pixel(zoomed, io.x + io.width / 2, compute.y + 2), compute.fill);
      assertEquals(pixel(zoomed, WIDTH - XPAD - 2, hot.y + 2), hot.fill);

      // Search: a regular expression, matches highlighted, their share measured.
      page.once("dialog", (d: { accept(text: string): Promise<void> }) => d.accept("^(hot|cold)$"));
      await page.locator("#search").click();
      assertEquals(await page.locator("#matched").textContent(), "Matched: 80.00%");
      assertEquals(await frame("hot").locator("rect").getAttribute("fill"), "rgb(230,0,230)");

      await page.locator("#unzoom").click();
      assert(Math.abs(await rectWidth("compute") - PLOT * 0.8) < 0.1);
      assert(await frame("io_wait").isVisible());
      deepEqual(errors, []);
    } finally {
      await browser.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
  { commands: [CHROMIUM], sanitize: false },
);
