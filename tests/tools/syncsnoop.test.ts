/**
 * syncsnoop against a workload whose truth is known: a Python process named
 * "syncwl" calls sync(), fsync() three times, fdatasync() twice, syncfs(),
 * msync() and sync_file_range(), reading CLOCK_MONOTONIC before and after.
 * Our run and bpftrace's syncsnoop.bt watch it in the same window
 * (libbpf-tools 0.x here has no syncsnoop).
 */
import { deepEqual, equal as assertEquals, ok as assert } from "node:assert/strict";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { PausedWorkload, waitForPrograms } from "../support/event_tools.ts";
import { Spawned } from "../support/process.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";

const PYTHON = "/usr/bin/python3";

/** Waits for "go"; the calls; prints the monotonic clock before and after. */
const WORKLOAD = String.raw`
import ctypes, json, mmap, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(15, b"syncwl", 0, 0, 0)
path = sys.argv[1]
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
os.write(fd, b"x" * 4096)
m = mmap.mmap(fd, 4096)
sys.stdin.readline()
before = time.monotonic()
os.sync()
for _ in range(3): os.fsync(fd)
for _ in range(2): os.fdatasync(fd)
assert libc.syncfs(fd) == 0
m[0:1] = b"y"; m.flush()                                   # msync
assert libc.sync_file_range(fd, ctypes.c_long(0), ctypes.c_long(0), 2) == 0
after = time.monotonic()
print(json.dumps({"before": before, "after": after}), flush=True)
`;

const CALLS = [
  "sync",
  "fsync",
  "fsync",
  "fsync",
  "fdatasync",
  "fdatasync",
  "syncfs",
  "msync",
  "sync_file_range",
];

async function assertNoneLoaded(): Promise<void> {
  await waitFor(
    async () => !(await loadedProgramNames()).some((n) => n.startsWith("sync_")),
    5000,
    "syncsnoop programs to unload",
  );
}

kernelTest("syncsnoop: nine sync-family calls, in order, as bpftrace", async (t) => {
  const dir = Deno.makeTempDirSync({ prefix: "syncsnoop-test-" });
  const work = new PausedWorkload(PYTHON, ["-c", WORKLOAD, `${dir}/file`]);
  const text = new ToolProcess("syncsnoop", []);
  const json = new ToolProcess("syncsnoop", ["--json"]);
  const bt = new Spawned("bpftrace", ["/usr/sbin/syncsnoop.bt"]);
  const out: Record<string, { code: number; stdout: string; stderr: string }> = {};
  let clock = { before: 0, after: 0 };
  try {
    await text.waitForOutput(/TIME\(s\) +COMM +CALL/);
    await waitForPrograms("sync_0", 2);
    await bt.waitForOutput(/PID +COMM/, 30_000);
    const done = await work.run();
    assertEquals(done.code, 0, done.stderr);
    clock = JSON.parse(done.stdout);
    const all = (s: string) =>
      s.split("\n").filter((l) => l.includes("syncwl")).length >= CALLS.length;
    await waitFor(() => [text, json, bt].every((p) => all(p.stdout)), 15_000, "every call").catch(
      () => {},
    );
  } finally {
    out.text = await text.stop();
    out.json = await json.stop();
    out.bt = await bt.stop();
    Deno.removeSync(dir, { recursive: true });
  }
  for (const [name, o] of Object.entries(out)) assertEquals(o.code, 0, `${name}: ${o.stderr}`);

  await t.step("TIME(s) COMM CALL: each call once, in order", () => {
    assertEquals(out.text.stdout.split("\n")[0], "TIME(s)            COMM             CALL");
    const lines = out.text.stdout.split("\n").filter((l) => / syncwl /.test(l));
    deepEqual(lines.map((l) => l.trim().split(/\s+/).slice(1)), CALLS.map((c) => ["syncwl", c]));
    for (const l of lines) assert(/^\d+\.\d{9} +syncwl {11}\w+$/.test(l), l);
  });

  await t.step("TIME(s) is CLOCK_MONOTONIC: within the workload's own readings", () => {
    const times = out.text.stdout.split("\n").filter((l) => / syncwl /.test(l)).map((l) =>
      Number(l.split(" ")[0])
    );
    assert(
      times.every((s) => s >= clock.before - 0.001 && s <= clock.after + 0.001),
      `${times} vs ${JSON.stringify(clock)}`,
    );
  });

  await t.step("bpftrace syncsnoop.bt saw the same calls, same PID", () => {
    const theirs = out.bt.stdout.split("\n").filter((l) => / syncwl /.test(l)).map((l) =>
      l.trim().split(/\s+/)
    );
    deepEqual(theirs.map((f) => f[3].replace("tracepoint:syscalls:sys_enter_", "")), CALLS);
    assert(theirs.every((f) => f[1] === String(work.pid)));
  });

  await t.step("--json: the same calls with the PID", () => {
    const events = out.json.stdout.trim().split("\n").map((l) => JSON.parse(l)).filter((e) =>
      e.comm === "syncwl"
    );
    deepEqual(events.map((e) => [e.pid, e.call]), CALLS.map((c) => [work.pid, c]));
  });
  await assertNoneLoaded();
});

kernelTest("syncsnoop: SIGINT exits 0 and leaves nothing loaded", async () => {
  const tool = new ToolProcess("syncsnoop", []);
  await tool.waitForOutput(/CALL/);
  await waitForPrograms("sync_0", 1);
  assertEquals((await tool.stop("SIGINT")).code, 0);
  await assertNoneLoaded();
});

for (const args of [["-p", "1"], ["extra"]]) {
  Deno.test(`syncsnoop ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("syncsnoop", args);
    assertEquals(code, 2, stderr);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(stderr.startsWith("syncsnoop: "), stderr);
  });
}
