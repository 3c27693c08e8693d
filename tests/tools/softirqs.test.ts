/**
 * softirqs against the kernel's own softirq counts (/proc/softirqs, counted
 * where softirq_entry fires): with -d each run is one histogram entry, so a
 * vector's histogram total must lie between what /proc/softirqs counted
 * during a workload inside the tool's window (UDP datagrams over loopback
 * for net_rx, plus whatever timers, RCU and the scheduler do meanwhile) and
 * what it counted around the tool's whole life. Every vector active during
 * the workload is checked.
 *
 * Cross-check: libbpf-tools softirqs -d, run in the same window, must fall
 * within the same bounds.
 */
import { equal as assertEquals, ok as assert } from "node:assert/strict";
import { ReferenceTool, waitForPrograms } from "../support/event_tools.ts";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { parseLog2Hists, total } from "../support/log2_hist_parse.ts";
import { runOk } from "../support/process.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";

const READY = /Tracing soft irq event time/;

/** Softirq runs so far by vector name (lowercase), all CPUs. */
function softirqs(): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of Deno.readTextFileSync("/proc/softirqs").split("\n").slice(1)) {
    const m = line.match(/^\s*(\w+):\s+(.*)$/);
    if (m) out.set(m[1].toLowerCase(), m[2].trim().split(/\s+/).reduce((a, b) => a + Number(b), 0));
  }
  return out;
}

/** 2000 UDP datagrams to ourselves over loopback: net_rx softirqs. */
const UDP = `
import socket
r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); r.bind(("127.0.0.1", 0))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(2000):
    s.sendto(b"x" * 64, r.getsockname()); r.recv(100)
`;

async function ourPrograms(): Promise<number> {
  return (await loadedProgramNames()).filter((n) => n.startsWith("softirq_")).length;
}

kernelTest(
  "softirqs -d: each vector's runs within /proc/softirqs' bounds, as libbpf-tools softirqs -d",
  async () => {
    const before = await ourPrograms();
    const outer0 = softirqs();
    const dist = new ToolProcess("softirqs", ["-d"]);
    const totals = new ToolProcess("softirqs", []);
    const json = new ToolProcess("softirqs", ["-d", "--json"]);
    const ref = new ReferenceTool("/usr/sbin/softirqs", ["-d"]);
    const tools = [dist, totals, json, ref];
    try {
      for (const t of [dist, totals, ref]) await t.waitForOutput(READY);
      await waitForPrograms("softirq_exit", before + 3);
      const inner0 = softirqs();
      await runOk("python3", ["-c", UDP]);
      const inner1 = softirqs();
      const outs = await Promise.all(tools.map((t) => t.stop()));
      const outer1 = softirqs();
      for (const o of outs) assertEquals(o.code, 0, o.stderr);
      const [d, t, j, r] = outs.map((o) => o.stdout);

      const ours = new Map(parseLog2Hists(d).map((h) => [h.heading!.replace("softirq = ", ""), h]));
      const theirs = new Map(
        parseLog2Hists(r).map((h) => [h.heading!.replace("softirq = ", ""), h]),
      );
      const doc = JSON.parse(j.trim());
      const fromJson = new Map<string, number>(
        doc.histograms.map((h: { softirq: string; buckets: { count: number }[] }) => [
          h.softirq,
          h.buckets.reduce((n, b) => n + b.count, 0),
        ]),
      );
      const active = [...inner1.keys()].filter((v) => inner1.get(v)! > inner0.get(v)!);
      assert(active.includes("net_rx") && active.length >= 3, `active: ${active.join(",")}`);
      for (const v of active) {
        const lo = inner1.get(v)! - inner0.get(v)!, hi = outer1.get(v)! - outer0.get(v)!;
        for (
          const [who, n, out] of [
            ["ours", total(ours.get(v) ?? { unit: "", counts: [] }), d],
            ["libbpf-tools", total(theirs.get(v) ?? { unit: "", counts: [] }), r],
            ["ours --json", fromJson.get(v) ?? 0, j],
          ] as const
        ) {
          assert(
            n >= lo && n <= hi,
            `${who}: ${v} ran ${n} times, /proc/softirqs ${lo}..${hi}\n${out}`,
          );
        }
      }
      // Totals: the same active vectors have time.
      assert(/^SOFTIRQ +TOTAL_usecs$/m.test(t), t);
      assert(/^net_rx +\d+$/m.test(t), t);
    } finally {
      for (const x of tools) x.killTree();
    }
    await waitFor(async () => (await ourPrograms()) === before, 3000, "softirqs to unload");
  },
);

for (
  const [args, pattern] of [
    [["-C"], /^softirqs: unknown option '-C'/],
    [["0"], /^softirqs: invalid interval '0': must be at least 1/],
    [["1", "1", "1"], /^softirqs: unrecognized positional argument: '1'/],
  ] as [string[], RegExp][]
) {
  Deno.test(`softirqs ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("softirqs", args);
    assertEquals(code, 2, stderr);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(pattern.test(stderr), stderr);
  });
}
