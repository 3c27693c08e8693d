/**
 * hardirqs against the kernel's own interrupt counts: 2048 O_DIRECT reads of
 * a file on the root disk (each a request whose completion interrupts), and
 * /proc/interrupts read around them. The disk's handler is the one whose
 * count grew most during the reads. What the tool counts for it must lie
 * between what /proc/interrupts counted during the reads (inside the
 * tool's window) and during the tool's whole life (around it), whatever
 * else the machine does meanwhile: for -C counts, and for -d the total of
 * each histogram (one entry per handler run).
 *
 * Cross-check: libbpf-tools hardirqs -C, run in the same window, must fall
 * within the same bounds.
 */
import { equal as assertEquals, ok as assert } from "node:assert/strict";
import { ReferenceTool, waitForPrograms } from "../support/event_tools.ts";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { parseLog2Hists, total } from "../support/log2_hist_parse.ts";
import { runOk } from "../support/process.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";

const READS = 2048;
const READY = /Tracing hard irq event/;

/** Interrupts handled so far by handler name (numbered /proc/interrupts lines, all CPUs). */
function interrupts(): Map<string, number> {
  const lines = Deno.readTextFileSync("/proc/interrupts").split("\n");
  const cpus = lines[0].trim().split(/\s+/).length;
  const out = new Map<string, number>();
  for (const line of lines.slice(1)) {
    const m = line.match(/^\s*\d+:\s+(.*)$/);
    if (!m) continue;
    const f = m[1].trim().split(/\s+/);
    const n = f.slice(0, cpus).reduce((a, b) => a + Number(b), 0);
    // After the counts: chip, hwirq-type, then the action names (", " between shared ones).
    const name = f.slice(cpus + 2).join(" ");
    for (const action of name.split(", ")) out.set(action, (out.get(action) ?? 0) + n);
  }
  return out;
}

function delta(a: Map<string, number>, b: Map<string, number>, name: string): number {
  return (b.get(name) ?? 0) - (a.get(name) ?? 0);
}

/** HARDIRQ table rows: name -> total. */
function parseTable(stdout: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of stdout.matchAll(/^(\S+) +(\d+)$/gm)) out.set(m[1], Number(m[2]));
  return out;
}

async function ourPrograms(): Promise<number> {
  return (await loadedProgramNames()).filter((n) => n.startsWith("hardirq_")).length;
}

kernelTest(
  "hardirqs -C/-d: the disk's interrupts during 2048 O_DIRECT reads, within /proc/interrupts' bounds, as libbpf-tools -C",
  async () => {
    const file = await Deno.makeTempFile({ dir: "/var/tmp", prefix: "bpftk-hardirqs-" });
    const tools: (ToolProcess | ReferenceTool)[] = [];
    try {
      await runOk("dd", [`if=/dev/urandom`, `of=${file}`, "bs=1M", "count=8", "conv=fsync"]);
      const before = await ourPrograms();
      const outer0 = interrupts();
      const counts = new ToolProcess("hardirqs", ["-C"]);
      const dist = new ToolProcess("hardirqs", ["-d"]);
      const time = new ToolProcess("hardirqs", ["-N"]);
      const json = new ToolProcess("hardirqs", ["-C", "--json"]);
      const ref = new ReferenceTool("/usr/sbin/hardirqs", ["-C"]);
      tools.push(counts, dist, time, json, ref);
      for (const t of tools.filter((t) => t !== json)) await t.waitForOutput(READY);
      await waitForPrograms("hardirq_entry", before + 4);
      const inner0 = interrupts();
      await runOk("dd", [`if=${file}`, "of=/dev/null", "bs=4k", "iflag=direct"]);
      const inner1 = interrupts();
      const outs = await Promise.all(tools.map((t) => t.stop()));
      const outer1 = interrupts();
      for (const o of outs) assertEquals(o.code, 0, o.stderr);
      const [c, d, t, j, r] = outs.map((o) => o.stdout);

      // The disk's handler: the one that grew most during the reads.
      const [disk, during] = [...inner1.keys()]
        .map((n) => [n, delta(inner0, inner1, n)] as const)
        .sort((a, b) => b[1] - a[1])[0];
      assert(during >= READS / 4, `${disk}: only ${during} interrupts during ${READS} reads`);
      const around = delta(outer0, outer1, disk);
      const within = (n: number | undefined, what: string, out: string) =>
        assert(
          n !== undefined && n >= during && n <= around,
          `${what}: ${n} ${disk} interrupts, /proc/interrupts: ${during}..${around}\n${out}`,
        );

      assert(/^HARDIRQ +TOTAL_count$/m.test(c), c);
      within(parseTable(c).get(disk), "ours -C", c);
      within(parseTable(r).get(disk), "libbpf-tools -C", r);

      const hist = parseLog2Hists(d).find((h) => h.heading === `hardirq = ${disk}`);
      assert(hist, d);
      assertEquals(hist.unit, "usecs");
      within(total(hist), "ours -d", d);

      assert(/^HARDIRQ +TOTAL_nsecs$/m.test(t), t);
      const ns = parseTable(t).get(disk);
      // Each handler run takes at least some hundreds of ns, and not a millisecond.
      assert(ns !== undefined && ns >= during * 100 && ns <= around * 1_000_000, t);

      const doc = JSON.parse(j.trim());
      assertEquals(doc.unit, "count");
      within(
        doc.hardirqs.find((x: { hardirq: string }) => x.hardirq === disk)?.total,
        "ours --json",
        j,
      );
    } finally {
      for (const t of tools) t.killTree();
      await Deno.remove(file).catch(() => {});
    }
    await waitFor(async () => (await ourPrograms()) === 0, 3000, "hardirqs to unload");
  },
);

for (
  const [args, pattern] of [
    [["-C", "-d"], /^hardirqs: -C and -d cannot be used together/],
    [["-c", "/nonexistent"], /^hardirqs: -c \/nonexistent: no such cgroup/],
    [["1", "x"], /^hardirqs: invalid count 'x': not an integer/],
    [["-p", "1"], /^hardirqs: unknown option '-p'/],
  ] as [string[], RegExp][]
) {
  Deno.test(`hardirqs ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("hardirqs", args);
    assertEquals(code, 2, stderr);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(pattern.test(stderr), stderr);
  });
}
