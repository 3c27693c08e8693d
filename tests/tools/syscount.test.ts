/**
 * syscount against a workload whose truth is known: a Python process that
 * calls getppid() 1234 times, kill(missing PID, 0) 17 times (ESRCH) and
 * sleeps 100 ms three times (clock_nanosleep). Our runs with several flags
 * and libbpf-tools syscount watch the same process in the same window.
 */
import { deepEqual, equal as assertEquals, ok as assert } from "node:assert/strict";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { PausedWorkload, ReferenceTool, waitForPrograms } from "../support/event_tools.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";

const PYTHON = "/usr/bin/python3";
const GETPPIDS = 1234, KILLS = 17, SLEEPS = 3;

/** Waits for "go"; then the calls; then waits for its stdin to close. */
const WORKLOAD = String.raw`
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
missing = 4194000
while os.path.exists("/proc/%d" % missing): missing -= 1
sys.stdin.readline()
for _ in range(${GETPPIDS}): libc.syscall(110)                 # getppid
for _ in range(${KILLS}): libc.syscall(62, missing, 0)         # kill: ESRCH
for _ in range(${SLEEPS}): time.sleep(0.1)                     # clock_nanosleep
print("done", flush=True)
sys.stdin.read()
`;

/** The rows of the last report: first column (syscall or PID) to the other columns. */
function lastReport(stdout: string): Map<string, string[]> {
  const reports = stdout.split(/^\[\d\d:\d\d:\d\d\]\n/m).slice(1);
  const rows = new Map<string, string[]>();
  for (const line of (reports.at(-1) ?? "").split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[0]) rows.set(f[0], f.slice(1));
  }
  return rows;
}

async function assertNoneLoaded(): Promise<void> {
  await waitFor(
    async () => !(await loadedProgramNames()).some((n) => n === "sys_exit" || n === "sys_enter"),
    5000,
    "syscount programs to unload",
  );
}

kernelTest("syscount: 1234 getppid calls counted 1234 times, as libbpf-tools", async (t) => {
  const work = new PausedWorkload(PYTHON, ["-c", WORKLOAD]);
  const W = String(work.pid);
  const runs = {
    plain: new ToolProcess("syscount", ["-p", W, "-T", "50"]),
    latency: new ToolProcess("syscount", ["-L", "-p", W, "-T", "50"]),
    millis: new ToolProcess("syscount", ["-L", "-m", "-p", W]),
    process: new ToolProcess("syscount", ["-P", "-p", W]),
    failed: new ToolProcess("syscount", ["-x", "-p", W, "-T", "50"]),
    esrch: new ToolProcess("syscount", ["-e", "ESRCH", "-p", W]),
    top: new ToolProcess("syscount", ["-T", "1", "-p", W]),
    json: new ToolProcess("syscount", ["--json", "-L", "-p", W]),
  };
  const ref = new ReferenceTool("/usr/sbin/syscount", ["-p", W, "-T", "50"]);
  const refLatency = new ReferenceTool("/usr/sbin/syscount", ["-L", "-p", W]);
  const out: Record<string, { code: number; stdout: string; stderr: string }> = {};
  try {
    for (const [name, p] of Object.entries(runs)) {
      if (name !== "json") await p.waitForOutput(/Tracing syscalls/);
    }
    await waitForPrograms("sys_exit", Object.keys(runs).length);
    await ref.waitForOutput(/Tracing syscalls/);
    await refLatency.waitForOutput(/Tracing syscalls/);
    await work.write("go\n");
    await work.waitForOutput(/done/);
    await new Promise((r) => setTimeout(r, 300));
  } finally {
    for (const [name, p] of Object.entries(runs)) out[name] = await p.stop();
    out.ref = await ref.stop();
    out.refLatency = await refLatency.stop();
    await work.closeStdin();
    await work.wait();
  }
  for (const [name, o] of Object.entries(out)) assertEquals(o.code, 0, `${name}: ${o.stderr}`);

  await t.step("getppid: exactly 1234, kill 17, clock_nanosleep 3; libbpf-tools the same", () => {
    const ours = lastReport(out.plain.stdout), theirs = lastReport(out.ref.stdout);
    assertEquals(
      out.plain.stdout.split("\n")[0],
      "Tracing syscalls, printing top 50... Ctrl+C to quit.",
    );
    assert(/^SYSCALL {19}COUNT$/m.test(out.plain.stdout), out.plain.stdout);
    assertEquals(ours.get("getppid")?.[0], String(GETPPIDS), out.plain.stdout);
    assertEquals(ours.get("kill")?.[0], String(KILLS), out.plain.stdout);
    assertEquals(ours.get("clock_nanosleep")?.[0], String(SLEEPS), out.plain.stdout);
    for (const s of ["getppid", "kill", "clock_nanosleep"]) {
      assertEquals(theirs.get(s)?.[0], ours.get(s)?.[0], `${s}\n${out.ref.stdout}`);
    }
  });

  await t.step("-L: the three 100 ms sleeps are about 300 ms (us), sorted by time", () => {
    assert(/^SYSCALL {19}COUNT {8}TIME \(us\)$/m.test(out.latency.stdout), out.latency.stdout);
    const rows = lastReport(out.latency.stdout);
    const [count, us] = rows.get("clock_nanosleep") ?? [];
    assertEquals(count, String(SLEEPS));
    assert(Number(us) >= 300_000 && Number(us) < 1_000_000, out.latency.stdout);
    assertEquals([...rows.keys()][0], "clock_nanosleep", "the longest total first");
    assertEquals(rows.get("getppid")?.[0], String(GETPPIDS));
    const [refCount, refUs] = lastReport(out.refLatency.stdout).get("clock_nanosleep") ?? [];
    assertEquals(refCount, count);
    assert(Math.abs(Number(refUs) - Number(us)) < 5_000, `${us} vs ${refUs}`);
  });

  await t.step("-L -m: milliseconds", () => {
    assert(/TIME \(ms\)$/m.test(out.millis.stdout), out.millis.stdout);
    const ms = Number(lastReport(out.millis.stdout).get("clock_nanosleep")?.[1]);
    assert(ms >= 300 && ms < 1000, out.millis.stdout);
  });

  await t.step("-P: one row, the workload, with every call it made", () => {
    assert(/^PID {4}COMM {15}COUNT$/m.test(out.process.stdout), out.process.stdout);
    const rows = lastReport(out.process.stdout);
    deepEqual([...rows.keys()], [W]);
    assertEquals(rows.get(W)![0], "python3");
    assert(Number(rows.get(W)![1]) >= GETPPIDS + KILLS + SLEEPS, out.process.stdout);
  });

  await t.step("-x: failures only (kill, never getppid); -e ESRCH: kill only", () => {
    const failed = lastReport(out.failed.stdout);
    assertEquals(failed.get("kill")?.[0], String(KILLS));
    assert(!failed.has("getppid") && !failed.has("clock_nanosleep"), out.failed.stdout);
    const esrch = lastReport(out.esrch.stdout);
    deepEqual([...esrch.keys()], ["kill"], out.esrch.stdout);
    assertEquals(esrch.get("kill")?.[0], String(KILLS));
  });

  await t.step("-T 1: only the top syscall (getppid)", () => {
    deepEqual([...lastReport(out.top.stdout).entries()], [["getppid", [String(GETPPIDS)]]]);
  });

  await t.step("--json: the same counts, time in us", () => {
    const report = JSON.parse(out.json.stdout.trim().split("\n").at(-1)!);
    const row = (s: string) => report.syscalls.find((r: { syscall: string }) => r.syscall === s);
    assertEquals(row("getppid").count, GETPPIDS);
    assertEquals(row("getppid").nr, 110);
    assert(row("clock_nanosleep").totalUs >= 300_000);
  });
  await assertNoneLoaded();
});

kernelTest("syscount -i 1 -d 3: three reports, then it exits by itself", async () => {
  const t0 = performance.now();
  const { code, stdout } = await runToolOnce("syscount", ["-i", "1", "-d", "3", "-p", "1"]);
  assertEquals(code, 0);
  assertEquals(stdout.match(/^\[\d\d:\d\d:\d\d\]$/gm)?.length, 3, stdout);
  assert(performance.now() - t0 < 10_000);
  await assertNoneLoaded();
});

kernelTest("syscount: SIGINT prints the report, exits 0, leaves nothing loaded", async () => {
  const tool = new ToolProcess("syscount", ["-L"]);
  await tool.waitForOutput(/Tracing/);
  await waitForPrograms("sys_exit", 1);
  const { code, stdout } = await tool.stop("SIGINT");
  assertEquals(code, 0);
  assert(/^SYSCALL +COUNT +TIME \(us\)$/m.test(stdout), stdout);
  await assertNoneLoaded();
});

Deno.test("syscount -l: the syscall list, nothing loaded", async () => {
  const { code, stdout } = await runToolOnce("syscount", ["-l"]);
  assertEquals(code, 0);
  const lines = stdout.trim().split("\n");
  assert(lines.includes(" 39: getpid") && lines.includes("110: getppid"), stdout);
  assert(lines.every((l) => /^ *\d+: \w+$/.test(l)));
});

for (
  const [args, pattern] of [
    [["-p", "x"], /invalid PID 'x': not an integer/],
    [["-e", "EBOGUS"], /invalid errno 'EBOGUS'/],
    [["-T", "0"], /invalid TOP '0': must be at least 1/],
    [["-i", "-1"], /invalid interval '-1': negative/],
    [["-d", "0"], /invalid duration '0': must be at least 1/],
    [["-c", "/nonexistent"], /-c \/nonexistent: no such cgroup directory/],
    [["extra"], /unrecognized positional argument: 'extra'/],
  ] as [string[], RegExp][]
) {
  Deno.test(`syscount ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("syscount", args);
    assertEquals(code, 2, stderr);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(stderr.startsWith("syscount: ") && pattern.test(stderr), stderr);
  });
}
