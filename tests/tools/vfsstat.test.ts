/**
 * vfsstat against VFS calls in known numbers (tests/tools/vfsstat_workload.py:
 * 200k reads, 100k writes, 1.5k fsyncs, 20k opens, 300 regular-file mknods,
 * plus 20k failed opens and 200 FIFO mknods that must not count).
 *
 * vfsstat counts the whole machine, so its totals are the workload's plus
 * whatever else ran meanwhile (other tests run on this machine too). That
 * noise is counted by bpftrace, the same syscalls classified the same way,
 * for every process but the workload, from before vfsstat starts until
 * after it ends. The check, per column, of the total over the run (the 1 s
 * rates summed):
 *
 *     workload <= total <= workload + what bpftrace counted for the others
 *
 * so nothing is missed and nothing is made up. Text and --json run side by
 * side and are held to the same bounds. libbpf-tools vfsstat needs kprobes
 * or fentry: no cross-check with it on this kernel.
 */
import { deepEqual, equal, ok as assert } from "node:assert/strict";
import { syscallNr } from "../../lib/dsl/raw_syscalls.ts";
import { hasKprobes } from "../../lib/kernel/features.ts";
import { verifyBuilt } from "../../lib/cli/session.ts";
import { buildPrograms } from "../../tools/vfsstat.ts";
import { PausedWorkload } from "../support/event_tools.ts";
import { bpftoolJson, kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { REPO_ROOT, runToolOnce, ToolProcess } from "../support/tool_process.ts";
import { Spawned } from "../support/process.ts";

const WORKLOAD = `${REPO_ROOT}tests/tools/vfsstat_workload.py`;
const COLUMNS = ["read", "write", "fsync", "open", "create"] as const;
type Row = Record<(typeof COLUMNS)[number], number>;

function parseText(stdout: string): Row[] {
  const [header, ...rows] = stdout.split("\n").filter((l) => l);
  equal(header, "TIME         READ/s  WRITE/s  FSYNC/s   OPEN/s CREATE/s");
  return rows.map((line) => {
    // "%-8s: " then " %8llu" per column
    const m = line.match(/^\d\d:\d\d:\d\d: ((?: [ \d]{7}\d){5})$/);
    assert(m, `not a vfsstat line: '${line}'`);
    const cells = m[1].match(/.{9}/g)!;
    return Object.fromEntries(COLUMNS.map((c, i) => [c, Number(cells[i])])) as Row;
  });
}

function parseJson(stdout: string): Row[] {
  return stdout.split("\n").filter((l) => l).map((l) => {
    const o = JSON.parse(l);
    equal(o.interval, 1);
    return Object.fromEntries(COLUMNS.map((c) => [c, o[c]])) as Row;
  });
}

async function vfsstatProgramIds(): Promise<Set<number>> {
  const progs = await bpftoolJson<{ id: number; name?: string }[]>("prog", "show");
  return new Set(progs.filter((p) => p.name?.startsWith("vfsstat_")).map((p) => p.id));
}

/** `args->id == N || ...` for the syscalls this architecture has. */
function idIn(names: string[]): string {
  const nrs = names.map((n) => syscallNr(n)).filter((n) => n !== undefined);
  return nrs.length ? nrs.map((n) => `args->id == ${n}`).join(" || ") : "0";
}

/** bpftrace counting what vfsstat's syscall path counts, for every process but `pid`. */
function othersScript(pid: number): string {
  const regular = (arg: number) =>
    `$m = args->args[${arg}] & 0170000; if ($m == 0 || $m == 0100000) { @create = count(); }`;
  return `
tracepoint:raw_syscalls:sys_enter /pid != ${pid}/ {
  if (${idIn(["read", "pread64"])}) { @read = count(); }
  if (${idIn(["write", "pwrite64"])}) { @write = count(); }
  if (${idIn(["fsync", "fdatasync"])}) { @fsync = count(); }
  if (${idIn(["mknod"])}) { ${regular(1)} }
  if (${idIn(["mknodat"])}) { ${regular(2)} }
}
tracepoint:raw_syscalls:sys_exit /pid != ${pid} && args->ret >= 0/ {
  if (${idIn(["open", "openat", "openat2", "creat", "open_by_handle_at"])}) { @open = count(); }
}
`;
}

/** Runs bpftrace until stop(); its counts by column. */
function countOthers(pid: number) {
  const child = new Spawned("bpftrace", ["-e", othersScript(pid)]);
  return {
    async stop(): Promise<Row> {
      const out = await child.stop();
      const text = out.stdout;
      assert(/^Attaching \d+ probes/m.test(text), out.stderr);
      return Object.fromEntries(
        COLUMNS.map((c) => [c, Number(text.match(new RegExp(`^@${c}: (\\d+)$`, "m"))?.[1] ?? 0)]),
      ) as Row;
    },
  };
}

kernelTest("vfsstat 1: totals match a known workload, text and --json", async () => {
  const before = await vfsstatProgramIds();
  const workload = new PausedWorkload("python3", [WORKLOAD]);
  const bpftraceRunning = (await loadedProgramNames()).filter((n) => n === "sys_enter").length;
  const others = countOthers(workload.pid);
  let text: ToolProcess | undefined, json: ToolProcess | undefined;
  let ours: number[] = [];
  let truth: Row;
  const jsonLines = () => json!.stdout.split("\n").filter((l) => l).length;
  try {
    await waitFor(
      async () =>
        (await loadedProgramNames()).filter((n) => n === "sys_enter").length > bpftraceRunning,
      15000,
      "bpftrace",
    );
    text = new ToolProcess("vfsstat", ["1"]);
    json = new ToolProcess("vfsstat", ["--json", "1"]);
    await text.waitForOutput(/^TIME /m);
    await waitFor(
      async () => {
        ours = [...await vfsstatProgramIds()].filter((id) => !before.has(id));
        return ours.length >= 4;
      },
      15000,
      "both tools' programs",
    );
    const start = jsonLines();
    await waitFor(() => jsonLines() > start, 10000, "a first interval");
    const done = await workload.run();
    equal(done.code, 0, done.stderr);
    truth = JSON.parse(done.stdout);
    // Two more intervals, so the last one printed began after the workload ended.
    const after = jsonLines();
    await waitFor(() => jsonLines() >= after + 2, 10000, "intervals after the workload");
  } finally {
    text?.kill("SIGINT");
    json?.kill("SIGINT");
  }
  const t = await text.finish(), j = await json.finish();
  const noise = await others.stop();
  equal(t.code, 0, t.stderr);
  equal(j.code, 0, j.stderr);
  const expectPath = hasKprobes()
    ? "vfsstat: counting with kprobes on vfs_read, vfs_write, vfs_fsync, vfs_open, vfs_create\n"
    : "vfsstat: no kprobes in this kernel: counting syscalls (raw_syscalls:sys_enter/sys_exit)\n";
  equal(t.stderr, expectPath);
  const left = await vfsstatProgramIds();
  deepEqual(ours.filter((id) => left.has(id)), [], "programs left loaded");

  const outputs = [["text", parseText(t.stdout)], ["json", parseJson(j.stdout)]] as const;
  for (const [name, rows] of outputs) {
    for (const c of COLUMNS) {
      const total = rows.reduce((sum, r) => sum + r[c], 0);
      assert(
        total >= truth![c] && total <= truth![c] + noise[c],
        `${name} ${c}: ${total} counted, the workload made ${truth![c]}, others ${noise[c]}`,
      );
    }
  }
});

kernelTest("vfsstat: bad arguments exit 2 with one line", async () => {
  for (const args of [["-x"], ["0"], ["abc"], ["1", "0"], ["1", "2", "3"], ["1", "1e3"]]) {
    const r = await runToolOnce("vfsstat", args);
    equal(r.code, 2, `${args}: ${r.stderr}`);
    equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert(r.stderr.startsWith("vfsstat: "), r.stderr);
  }
  const help = await runToolOnce("vfsstat", ["-h"]);
  equal(help.code, 0);
  assert(
    help.stdout.includes("USAGE: vfsstat [-h] [--prometheus ADDR] [interval] [count]"),
    help.stdout,
  );
});

kernelTest("vfsstat: both paths build on any kernel, and our verifier accepts them", () => {
  const kprobes = buildPrograms(true);
  deepEqual(
    kprobes.map((p) => p.attach),
    ["vfs_read", "vfs_write", "vfs_fsync", "vfs_open", "vfs_create"].map((func) => ({
      kind: "kprobe",
      func,
      retprobe: false,
    })),
  );
  const syscalls = buildPrograms(false);
  deepEqual(syscalls.map((p) => p.name), ["vfsstat_enter", "vfsstat_exit"]);
  for (const p of [...kprobes, ...syscalls]) assert(verifyBuilt(p).ok, p.name);
});

kernelTest("vfsstat 2147484 1: a long interval waits (no timer overflow)", async () => {
  const p = new ToolProcess("vfsstat", ["2147484", "1"]);
  await p.waitForOutput(/^TIME /m);
  await new Promise((r) => setTimeout(r, 1500));
  equal(p.stdout.split("\n").filter((l) => l).length, 1, `only the header: ${p.stdout}`);
  p.kill("SIGINT");
  const { code, stdout, stderr } = await p.finish();
  equal(code, 0, stderr);
  equal(stderr.split("\n").filter((l) => l).length, 1, `only the path note: ${stderr}`);
  equal(stdout.split("\n").filter((l) => l).length, 1, "a cut interval prints no rate");
});
