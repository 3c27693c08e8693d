/**
 * Kernel cross-check: libbpf-tools prints histograms of real scheduler and
 * block activity; we read the counts back, print them with formatLog2Hist
 * and require the same bytes.
 */
import { assertEquals, assertOk } from "./assert.ts";
import { formatLog2Hist } from "../../../lib/format/log2_hist.ts";
import { parseLog2Hists } from "./hist_parse.ts";
import { capture, startDiskWorkload, startSchedulerWorkload } from "./reference.ts";
import { kernelTest } from "../../support/kernel.ts";

const RUNQLAT = "/usr/sbin/runqlat";
const BIOLATENCY = "/usr/sbin/biolatency";

/** Runs a reference tool and checks every histogram it printed against ours. */
async function crossCheck(tool: string, args: string[], expectHists: number): Promise<void> {
  const result = await capture(tool, args);
  assertEquals(result.code, 0, `${tool} ${args.join(" ")} failed:\n${result.stderr}`);
  const hists = parseLog2Hists(result.stdout);
  assertOk(
    hists.length >= expectHists,
    `${tool} ${args.join(" ")}: expected ${expectHists}+ histograms in:\n${result.stdout}`,
  );
  let total = 0n;
  for (const hist of hists) {
    assertEquals(formatLog2Hist(hist.counts, hist.valType), hist.text);
    // The maps hold 26+ slots; trailing empty slots must not change a byte.
    const padded = [...hist.counts, ...new Array(30).fill(0n)];
    assertEquals(formatLog2Hist(padded, hist.valType), hist.text);
    for (const count of hist.counts) total += count;
  }
  assertOk(total > 0n, `${tool}: no events were counted`);
  // Nothing but the banner, blank lines, timestamps and pid headers may surround them.
  let rest = result.stdout;
  for (const hist of hists) rest = rest.replace(hist.text, "");
  for (const line of rest.split("\n")) {
    assertOk(
      line === "" || /^(Tracing .*|\d\d:\d\d:\d\d|pid = \d+ .*|tid = \d+ .*|disk = .*)$/.test(line),
      `unexpected line outside the histograms: ${JSON.stringify(line)}`,
    );
  }
}

kernelTest("formatLog2Hist matches libbpf-tools runqlat on live scheduler data", async () => {
  const stop = startSchedulerWorkload();
  try {
    await crossCheck(RUNQLAT, ["1", "2"], 2); // usecs
    await crossCheck(RUNQLAT, ["-m", "1", "1"], 1); // msecs
    await crossCheck(RUNQLAT, ["-T", "1", "1"], 1); // with the HH:MM:SS header
    await crossCheck(RUNQLAT, ["-P", "1", "1"], 2); // one histogram per process
  } finally {
    await stop();
  }
}, { commands: [RUNQLAT] });

kernelTest("formatLog2Hist matches libbpf-tools biolatency on live disk I/O", async () => {
  const stop = await startDiskWorkload();
  try {
    await crossCheck(BIOLATENCY, ["1", "1"], 1);
    await crossCheck(BIOLATENCY, ["-D", "1", "1"], 1); // per-disk histograms
  } finally {
    await stop();
  }
}, { commands: [BIOLATENCY] });
