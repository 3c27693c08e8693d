/**
 * wakeuptime against blocking whose waker is known
 * (tests/tools/wakeuptime_workload.py): "wt_target" blocks N times reading
 * a pipe, each time woken by "wt_waker" writing to it after SLEEP_MS. With
 * -p TARGET, the report must hold the pair target wt_target / waker
 * wt_waker, under a waker stack through (anon_)pipe_write, with a total
 * no more than what the target measured for its reads (which also holds
 * the run queue wait after each wakeup) and at least half of it.
 *
 * Cross-check: libbpf-tools wakeuptime -p TARGET, run in the same window,
 * must report the same pair with a total within 3%.
 */
import { equal as assertEquals, ok as assert } from "node:assert/strict";
import { ReferenceTool, waitForPrograms } from "../support/event_tools.ts";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { Spawned } from "../support/process.ts";
import { REPO_ROOT, runToolOnce, ToolProcess } from "../support/tool_process.ts";

const N = 10;
const SLEEP_MS = 20;

async function ourPrograms(): Promise<number> {
  return (await loadedProgramNames()).filter((n) => n === "wakeup_wakeup").length;
}

/** Our report's records: target, waker, frames, microseconds. */
function parseOurs(stdout: string) {
  const records = [];
  for (const block of stdout.split("\n\n")) {
    const lines = block.split("\n").filter((l) => l !== "");
    const t = lines.findIndex((l) => /^ {4}target: {10}/.test(l));
    if (t < 0) continue;
    const w = lines.findIndex((l) => /^ {4}waker: {11}/.test(l));
    assert(w > t && lines.length === w + 2, `bad record:\n${block}`);
    records.push({
      target: lines[t].slice(21),
      waker: lines[w].slice(21),
      frames: lines.slice(t + 1, w).map((l) => l.trim()),
      us: Number(lines[w + 1].trim()),
    });
  }
  return records;
}

kernelTest(
  "wakeuptime -p TARGET: the target's blocked time under wt_waker's pipe_write stack, as libbpf-tools wakeuptime",
  async () => {
    const child = new Spawned("python3", [
      `${REPO_ROOT}tests/tools/wakeuptime_workload.py`,
      String(N),
      String(SLEEP_MS),
    ], { stdin: "piped" });
    await child.waitForOutput(/^target \d+$/m);
    const target = Number(child.stdout.match(/^target (\d+)$/m)![1]);
    const before = await ourPrograms();
    const ours = new ToolProcess("wakeuptime", ["-p", String(target)]);
    const folded = new ToolProcess("wakeuptime", ["-f", "-p", String(target)]);
    const json = new ToolProcess("wakeuptime", ["--json", "-p", String(target)]);
    const ref = new ReferenceTool("/usr/sbin/wakeuptime", ["-p", String(target)]);
    const all = [ours, folded, json, ref];
    try {
      await ours.waitForOutput(/Tracing blocked time \(us\) by kernel stack/);
      await ref.waitForOutput(/Tracing blocked time/);
      await waitForPrograms("wakeup_wakeup", before + 3);
      await child.write("go\n");
      await child.closeStdin();
      const w = await child.wait();
      assertEquals(w.code, 0, w.stderr);
      const measured = Number(w.stdout.match(/^blocked_us (\d+)$/m)![1]);
      const [o, f, j, r] = await Promise.all(all.map((t) => t.stop()));
      for (const x of [o, f, j, r]) assertEquals(x.code, 0, x.stderr);

      const pair = parseOurs(o.stdout).filter((x) =>
        x.target === "wt_target" && x.waker === "wt_waker"
      );
      assert(pair.length >= 1, o.stdout);
      const total = pair.reduce((n, x) => n + x.us, 0);
      assert(
        total <= measured + 1000 && total >= measured / 2,
        `ours ${total} us, the target measured ${measured} us:\n${o.stdout}`,
      );
      assert(pair.some((x) => x.frames.some((n) => /pipe_write$/.test(n))), o.stdout);
      assert(pair.every((x) => !x.frames.some((n) => n.startsWith("bpf_prog_"))), o.stdout);

      // -f: waker;frames...;target us, the same total.
      const foldedTotal = f.stdout.split("\n")
        .filter((l) => l.startsWith("wt_waker;") && /;wt_target \d+$/.test(l))
        .reduce((n, l) => n + Number(l.split(" ").at(-1)), 0);
      assert(Math.abs(foldedTotal - total) <= total * 0.03 + 100, `${foldedTotal} vs ${total}`);

      // --json: label is the waker.
      const doc = JSON.parse(j.stdout.trim());
      assertEquals(doc.unit, "us");
      const jsonTotal = doc.stacks
        .filter((s: { comm: string; label: string }) =>
          s.comm === "wt_target" && s.label === "wt_waker"
        )
        .reduce((n: number, s: { value: number }) => n + s.value, 0);
      assert(Math.abs(jsonTotal - total) <= total * 0.03 + 100, `${jsonTotal} vs ${total}`);

      // libbpf-tools: "\ttarget: ..." frames "\t  waker: ..." then "\tUS".
      let refTotal = 0;
      for (const block of r.stdout.split("\n\n")) {
        const lines = block.split("\n");
        const t = lines.find((l) => /^\ttarget:/.test(l))?.split(/\s+/).at(-1);
        const wi = lines.findIndex((l) => /^\t +waker:/.test(l));
        if (t === "wt_target" && wi >= 0 && lines[wi].trim().endsWith(" wt_waker")) {
          refTotal += Number(lines[wi + 1].trim());
        }
      }
      assert(refTotal > 0, `libbpf-tools wakeuptime saw nothing:\n${r.stdout}`);
      assert(
        Math.abs(refTotal - total) <= refTotal * 0.03 + 100,
        `ours ${total} us, libbpf-tools ${refTotal} us`,
      );
    } finally {
      for (const t of all) t.killTree();
      child.killTree();
    }
    await waitFor(async () => (await ourPrograms()) === before, 3000, "wakeuptime to unload");
  },
);

for (
  const [args, pattern] of [
    [["-p", "1", "-u"], /^wakeuptime: -p and -u cannot be used together/],
    [["-m", "10", "-M", "5"], /^wakeuptime: the max block time is below the min block time/],
    [["--perf-max-stack-depth", "0"], /^wakeuptime: invalid stack depth '0': must be at least 1/],
    [["0"], /^wakeuptime: invalid duration '0': must be at least 1/],
  ] as [string[], RegExp][]
) {
  Deno.test(`wakeuptime ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("wakeuptime", args);
    assertEquals(code, 2, stderr);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(pattern.test(stderr), stderr);
  });
}
