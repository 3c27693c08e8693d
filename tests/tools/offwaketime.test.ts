/**
 * offwaketime against blocking whose waker is known
 * (tests/tools/wakeuptime_workload.py): "wt_target" blocks N times reading
 * a pipe, each time woken by "wt_waker" writing to it after SLEEP_MS. With
 * -p TARGET, the report must hold the pair waker wt_waker / target
 * wt_target, the target's kernel stack through (anon_)pipe_read, the
 * waker's through (anon_)pipe_write, with a total no more than what the
 * target measured for its reads (which also holds the run queue wait after
 * each wakeup) and at least half of it; -f and --json the same total.
 *
 * Cross-check: bcc's offwaketime cannot run here (no kernel headers) and
 * libbpf-tools has none; libbpf-tools wakeuptime -p TARGET, run in the same
 * window, measures the same blocked time by the same waker: its total must
 * be within 3%.
 */
import { equal as assertEquals, ok as assert } from "node:assert/strict";
import { ReferenceTool, waitForPrograms } from "../support/event_tools.ts";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { Spawned } from "../support/process.ts";
import { REPO_ROOT, runToolOnce, ToolProcess } from "../support/tool_process.ts";

const N = 10;
const SLEEP_MS = 20;

async function ourPrograms(): Promise<number> {
  return (await loadedProgramNames()).filter((n) => n === "offwake_switch").length;
}

/** Our report's records: waker, its frames, target, its frames, microseconds. */
function parseOurs(stdout: string) {
  const records = [];
  for (const block of stdout.split("\n\n")) {
    const lines = block.split("\n").filter((l) => l !== "");
    const w = lines.findIndex((l) => /^ {4}waker: {11}/.test(l));
    if (w < 0) continue;
    const d = lines.findIndex((l) => /^ {4}-- {15}--$/.test(l));
    const t = lines.findIndex((l) => /^ {4}target: {10}/.test(l));
    assert(w < d && d < t && lines.length === t + 2, `bad record:\n${block}`);
    records.push({
      waker: lines[w].slice(21).replace(/ \d+$/, ""),
      wakerFrames: lines.slice(w + 1, d).map((l) => l.trim()),
      targetFrames: lines.slice(d + 1, t).map((l) => l.trim()),
      target: lines[t].slice(21).replace(/ \d+$/, ""),
      us: Number(lines[t + 1].trim()),
    });
  }
  return records;
}

kernelTest(
  "offwaketime -p TARGET: blocked in pipe_read, woken from wt_waker's pipe_write; total as libbpf-tools wakeuptime",
  async () => {
    const child = new Spawned("python3", [
      `${REPO_ROOT}tests/tools/wakeuptime_workload.py`,
      String(N),
      String(SLEEP_MS),
    ], { stdin: "piped" });
    await child.waitForOutput(/^target \d+$/m);
    const target = Number(child.stdout.match(/^target (\d+)$/m)![1]);
    const before = await ourPrograms();
    const p = ["-p", String(target)];
    const ours = new ToolProcess("offwaketime", p);
    const folded = new ToolProcess("offwaketime", ["-f", ...p]);
    const json = new ToolProcess("offwaketime", ["--json", "-K", ...p]);
    const ref = new ReferenceTool("/usr/sbin/wakeuptime", p);
    const all = [ours, folded, json, ref];
    try {
      await ours.waitForOutput(/Tracing blocked time \(us\) by user \+ kernel off-CPU and waker/);
      await ref.waitForOutput(/Tracing blocked time/);
      await waitForPrograms("offwake_switch", before + 3);
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
      assert(pair.some((x) => x.targetFrames.some((n) => /pipe_read$/.test(n))), o.stdout);
      assert(pair.some((x) => x.wakerFrames.some((n) => /pipe_write$/.test(n))), o.stdout);

      // -f: target;...;--;...;waker us, the same total.
      const foldedTotal = f.stdout.split("\n")
        .filter((l) => l.startsWith("wt_target;") && l.includes(";--;") && / \d+$/.test(l))
        .filter((l) => l.replace(/ \d+$/, "").endsWith(";wt_waker"))
        .reduce((n, l) => n + Number(l.split(" ").at(-1)), 0);
      assert(Math.abs(foldedTotal - total) <= total * 0.03 + 100, `${foldedTotal} vs ${total}`);

      // --json -K: pairs of sides, kernel stacks only.
      const doc = JSON.parse(j.stdout.trim());
      assertEquals(doc.unit, "us");
      const jsonPairs = doc.stacks.filter((
        s: { target: { comm: string }; waker: { comm: string } },
      ) => s.target.comm === "wt_target" && s.waker.comm === "wt_waker");
      assert(jsonPairs.every((s: { target: { user?: unknown } }) => s.target.user === undefined));
      const jsonTotal = jsonPairs.reduce((n: number, s: { value: number }) => n + s.value, 0);
      assert(Math.abs(jsonTotal - total) <= total * 0.03 + 100, `${jsonTotal} vs ${total}`);

      // libbpf-tools wakeuptime: the same blocked time, by the same waker.
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
        `ours ${total} us, libbpf-tools wakeuptime ${refTotal} us`,
      );
    } finally {
      for (const t of all) t.killTree();
      child.killTree();
    }
    await waitFor(async () => (await ourPrograms()) === before, 3000, "offwaketime to unload");
  },
);

for (
  const [args, pattern] of [
    [["-p", "1", "-t", "1"], /^offwaketime: -p and -t cannot be used together/],
    [["-U", "-K"], /^offwaketime: -U and -K cannot be used together/],
    [["-m", "10", "-M", "5"], /^offwaketime: the max block time is below the min block time/],
    [["-k", "-U"], /^offwaketime: displaying user stacks for kernel threads/],
    [["0"], /^offwaketime: invalid duration '0': must be at least 1/],
  ] as [string[], RegExp][]
) {
  Deno.test(`offwaketime ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("offwaketime", args);
    assertEquals(code, 2, stderr);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(pattern.test(stderr), stderr);
  });
}
