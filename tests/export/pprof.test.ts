/**
 * --pprof against the real reader: `go tool pprof` (Debian golang-go) on the
 * gzipped profile.proto written by the same run as the folded output.
 *
 * - profile (every process, both CPUs): a C workload spinning in
 *   hot_leaf_function (called by known_parent_function) for 1.5 s; `go tool
 *   pprof -top` shows
 *   hot_leaf_function with the same flat sample count as the folded lines
 *   ending in it, the cpu/nanoseconds total is samples x 1e9/F, and
 *   `-traces` lists the same stacks with the same counts as the folded
 *   output (frames pprof cannot name, which folded prints as [unknown],
 *   compared as such).
 * - offcputime: a workload sleeping 5 x 20 ms; the profile's time/nanoseconds
 *   under sleeper_function is the folded microseconds x 1000, and the kernel
 *   mapping carries the running kernel's build ID.
 */
import { equal as assertEquals, ok as assert } from "node:assert/strict";
import { parseFolded } from "../../lib/format/folded.ts";
import { kernelBuildId } from "../../lib/export/pprof.ts";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { run } from "../support/process.ts";
import { buildWorkloads, Workload } from "../support/stack_workloads.ts";
import { ToolProcess } from "../support/tool_process.ts";

const FREQ = 99;

async function loaded(name: string): Promise<number> {
  return (await loadedProgramNames()).filter((n) => n.startsWith(name)).length;
}

/** `go tool pprof ARGS FILE`, with its caches in `dir`; its stdout. */
async function pprof(dir: string, args: string[], file: string): Promise<string> {
  const out = await run("go", ["tool", "pprof", ...args, file], {
    deadlineMs: 60_000,
    env: { HOME: dir, GOCACHE: `${dir}/gocache`, PPROF_TMPDIR: dir },
  });
  assertEquals(out.code, 0, `go tool pprof ${args.join(" ")}: ${out.stderr}`);
  return out.stdout;
}

/** `-traces` output: each trace's labels, value and frames (innermost first). */
function parseTraces(
  text: string,
): { labels: Record<string, string>; value: number; frames: string[] }[] {
  const blocks = text.split(/^-+\+-+$/m).slice(1);
  const out = [];
  for (const block of blocks) {
    const labels: Record<string, string> = {};
    const frames: string[] = [];
    let value = NaN;
    for (const line of block.split("\n")) {
      const label = line.match(/^\s+(\w+):\s+(.*)$/);
      const first = line.match(/^\s+(\d+)\s{3}(.*)$/);
      if (first) {
        value = Number(first[1]);
        frames.push(first[2].trim());
      } else if (label && Number.isNaN(value)) labels[label[1]] = label[2].trim();
      else if (line.trim() && !Number.isNaN(value)) frames.push(line.trim());
    }
    if (!Number.isNaN(value)) out.push({ labels, value, frames });
  }
  return out;
}

/** A frame as folded prints it: names pprof cannot give (addresses, <unknown>) are [unknown]. */
function frameName(f: string): string {
  return /^(0x[0-9a-f]+|<unknown>|\[[^\]]+\])$/.test(f) && f !== "[Missed User Stack]" &&
      f !== "[Missed Kernel Stack]"
    ? "[unknown]"
    : simplified(f);
}

/** pprof shortens C++ and Rust names in its reports (no template arguments): both sides so. */
function simplified(name: string): string {
  let out = name, before;
  do {
    before = out;
    out = out.replace(/<[^<>]*>/g, "");
  } while (out !== before);
  return out;
}

kernelTest(
  "profile --pprof: go tool pprof -top shows hot_leaf_function with the folded count; -traces = the folded stacks",
  async () => {
    const w = await buildWorkloads();
    const busy = new Workload(w.busy, ["1.5", "1"]);
    let tool: ToolProcess | undefined;
    const file = `${w.dir}/cpu.pb.gz`;
    try {
      await busy.value("pid");
      const before = await loaded("profile");
      // every process on every CPU: many stacks, kernel and user, some unnamed
      tool = new ToolProcess("profile", ["-f", "-F", String(FREQ), "--pprof", file]);
      await waitFor(async () => (await loaded("profile")) > before, 15000, "profile to attach");
      await new Promise((r) => setTimeout(r, 100));
      await busy.send("go");
      await busy.value("cpu");
      tool.kill("SIGINT");
      const { code, stdout, stderr } = await tool.finish();
      assertEquals(code, 0, stderr);
      await busy.close();

      const folded = parseFolded(stdout);
      const hot = folded.filter((s) => s.frames.at(-1) === "hot_leaf_function")
        .reduce((n, s) => n + s.count, 0);
      const all = folded.reduce((n, s) => n + s.count, 0);
      assert(hot > FREQ / 2, `hot_leaf_function: ${hot} samples\n${stdout}`);

      const top = await pprof(w.dir, ["-top", "-sample_index=samples", "-nodecount=1000"], file);
      const row = top.split("\n").find((l) => / hot_leaf_function$/.test(l));
      assert(row, `hot_leaf_function not in pprof -top:\n${top}`);
      const flat = Number(row.trim().split(/\s+/)[0]);
      console.log(
        `folded: ${hot} of ${all} samples end in hot_leaf_function; pprof -top flat ${flat}`,
      );
      assertEquals(flat, hot);
      assert(top.includes(`Total samples = ${all}`), top.split("\n").slice(0, 6).join("\n"));

      const cpu = await pprof(w.dir, ["-top", "-sample_index=cpu", "-unit=ns"], file);
      const total = Number(cpu.match(/Total samples = ([\d.]+)ns/)?.[1]);
      assertEquals(total, all * Math.round(1e9 / FREQ), cpu.split("\n").slice(0, 6).join("\n"));

      // -traces: the same stacks with the same counts (comm is a label there)
      const traces = parseTraces(await pprof(w.dir, ["-traces", "-sample_index=samples"], file));
      const fromPprof = new Map<string, number>();
      for (const t of traces) {
        const key = [t.labels.comm, ...t.frames.map(frameName).toReversed()].join(";");
        fromPprof.set(key, (fromPprof.get(key) ?? 0) + t.value);
      }
      const fromFolded = new Map<string, number>();
      for (const s of folded) {
        const key = s.frames.map((f, i) => i === 0 ? f : simplified(f)).join(";");
        fromFolded.set(key, (fromFolded.get(key) ?? 0) + s.count);
      }
      const sorted = (m: Map<string, number>) =>
        [...m].sort(([a], [b]) => a < b ? -1 : 1).map(([k, n]) => `${k} ${n}`);
      const [p, f] = [sorted(fromPprof), sorted(fromFolded)];
      const onlyP = p.filter((l) => !f.includes(l)), onlyF = f.filter((l) => !p.includes(l));
      assertEquals(
        onlyP.length + onlyF.length,
        0,
        `only in pprof -traces:\n${onlyP.join("\n")}\nonly in folded:\n${onlyF.join("\n")}`,
      );
      console.log(`pprof -traces: ${fromPprof.size} stacks, the folded output's`);
    } finally {
      tool?.killTree();
      busy.killTree();
      await Deno.remove(w.dir, { recursive: true }).catch(() => {});
    }
  },
  { commands: ["go", "gcc"], limitMs: 120_000 },
);

kernelTest(
  "offcputime --pprof: time/nanoseconds under sleeper_function = folded us x 1000; kernel build ID",
  async () => {
    const w = await buildWorkloads();
    const sleeper = new Workload(w.sleeper, ["5", "20"]);
    let tool: ToolProcess | undefined;
    const file = `${w.dir}/off.pb.gz`;
    try {
      const pid = String(Number(await sleeper.value("pid")));
      const before = await loaded("offcpu");
      tool = new ToolProcess("offcputime", ["-f", "-p", pid, "--pprof", file]);
      await waitFor(async () => (await loaded("offcpu")) > before, 15000, "offcputime to attach");
      await new Promise((r) => setTimeout(r, 100));
      await sleeper.send("go");
      await sleeper.value("slept_us");
      tool.kill("SIGINT");
      const { code, stdout, stderr } = await tool.finish();
      assertEquals(code, 0, stderr);
      await sleeper.close();

      const us = parseFolded(stdout).filter((s) => s.frames.includes("sleeper_function"))
        .reduce((n, s) => n + s.count, 0);
      assert(us > 50_000, `${us} us under sleeper_function\n${stdout}`);
      const top = await pprof(w.dir, ["-top", "-unit=ns", "-nodecount=1000"], file);
      const row = top.split("\n").find((l) => / sleeper_function$/.test(l));
      assert(row, `sleeper_function not in pprof -top:\n${top}`);
      const cum = Number(row.trim().split(/\s+/)[3].replace(/ns$/, ""));
      console.log(`folded: ${us} us under sleeper_function; pprof cum ${cum} ns`);
      assertEquals(cum, us * 1000);
      assert(top.includes("Type: time"), top.split("\n").slice(0, 6).join("\n"));
      const id = kernelBuildId();
      assert(/^[0-9a-f]{40}$/.test(id), id);
      const raw = await pprof(w.dir, ["-raw"], file);
      assert(raw.includes(id) && raw.includes("[kernel.kallsyms]"), "kernel mapping with build ID");
    } finally {
      tool?.killTree();
      sleeper.killTree();
      await Deno.remove(w.dir, { recursive: true }).catch(() => {});
    }
  },
  { commands: ["go", "gcc"], limitMs: 90_000 },
);
