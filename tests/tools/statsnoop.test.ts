/**
 * statsnoop against a workload whose truth is known: a Python process that
 * makes stat(), lstat(), fstatat(), statx() and statfs() calls through
 * libc's syscall() on marker paths, some of them failing with ENOENT. Our
 * runs and bpftrace's statsnoop.bt watch it in the same window
 * (libbpf-tools statsnoop loads none of its programs on this machine: it
 * skips every one).
 */
import { deepEqual, equal as assertEquals, ok as assert } from "node:assert/strict";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { PausedWorkload, waitForPrograms } from "../support/event_tools.ts";
import { Spawned } from "../support/process.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";

const PYTHON = "/usr/bin/python3";

/** Waits for "go"; the calls; prints each as JSON [syscall, path, ret, errno]. */
const WORKLOAD = String.raw`
import ctypes, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
d = sys.argv[1]
exists, missing = d + "/marker-exists", d + "/marker-missing"
buf = ctypes.create_string_buffer(1024)
NR = {"newstat": 4, "newlstat": 6, "statfs": 137, "newfstatat": 262, "statx": 332}
def call(name, path):
    p = path.encode()
    if name == "newfstatat": r = libc.syscall(NR[name], -100, p, buf, 0)
    elif name == "statx": r = libc.syscall(NR[name], -100, p, 0, 0xfff, buf)
    else: r = libc.syscall(NR[name], p, buf)
    print(json.dumps([name, path, r, ctypes.get_errno() if r < 0 else 0]), flush=True)
sys.stdin.readline()
for _ in range(5): call("newstat", exists)
call("newlstat", missing)
call("newfstatat", exists)
call("statx", exists)
call("statx", missing)
call("statfs", d)
call("newstat", missing)
`;

/** Lines about the marker directory, as [PID, COMM, RET, ERR, PATH]. */
function rows(stdout: string, dir: string): string[][] {
  return stdout.split("\n").filter((l) => l.includes(dir))
    .map((l) => l.trim().split(/\s+/));
}

async function assertNoneLoaded(): Promise<void> {
  await waitFor(
    async () => !(await loadedProgramNames()).some((n) => n === "statx_out" || n === "statfs_out"),
    5000,
    "statsnoop programs to unload",
  );
}

kernelTest("statsnoop: eleven stat calls, their results and paths, as bpftrace", async (t) => {
  const dir = Deno.makeTempDirSync({ prefix: "statsnoop-test-" });
  Deno.writeTextFileSync(`${dir}/marker-exists`, "x");
  const work = new PausedWorkload(PYTHON, ["-c", WORKLOAD, dir]);
  const W = String(work.pid);
  const runs = {
    plain: new ToolProcess("statsnoop", ["-p", W]),
    failed: new ToolProcess("statsnoop", ["-x", "-p", W]),
    time: new ToolProcess("statsnoop", ["-t", "-p", W]),
    all: new ToolProcess("statsnoop", []),
    json: new ToolProcess("statsnoop", ["--json", "-p", W]),
  };
  const bt = new Spawned("bpftrace", ["/usr/sbin/statsnoop.bt"]);
  const out: Record<string, { code: number; stdout: string; stderr: string }> = {};
  let truth: [string, string, number, number][] = [];
  try {
    for (const [name, p] of Object.entries(runs)) {
      if (name !== "json") await p.waitForOutput(/PID +COMM/);
    }
    await waitForPrograms("statx_out", Object.keys(runs).length);
    await bt.waitForOutput(/PID +COMM/, 30_000);
    const done = await work.run();
    assertEquals(done.code, 0, done.stderr);
    truth = done.stdout.trim().split("\n").map((l) => JSON.parse(l));
    const last = (s: string) =>
      s.includes(`${dir}/marker-missing`) &&
      s.split("\n").filter((l) => l.includes(dir)).length >= 10;
    await waitFor(
      () => [runs.plain, runs.all, bt].every((p) => last(p.stdout)),
      15_000,
      "the calls in every run",
    ).catch(() => {});
  } finally {
    for (const [name, p] of Object.entries(runs)) out[name] = await p.stop();
    out.bt = await bt.stop();
    Deno.removeSync(dir, { recursive: true });
  }
  for (const [name, o] of Object.entries(out)) assertEquals(o.code, 0, `${name}: ${o.stderr}`);
  const expected = truth.map((
    [, path, ret, err],
  ) => [W, "python3", ret >= 0 ? "0" : "-1", String(err), path]);

  await t.step("the workload's truth: eight successes, three ENOENT", () => {
    assertEquals(truth.length, 11);
    assertEquals(truth.filter((c) => c[3] === 2).length, 3);
  });

  await t.step("every call once: PID COMM RET ERR PATH", () => {
    assertEquals(out.plain.stdout.split("\n")[0], "PID     COMM                 RET  ERR  PATH");
    deepEqual(rows(out.plain.stdout, dir), expected);
    deepEqual(rows(out.all.stdout, dir), expected);
  });

  await t.step("bpftrace statsnoop.bt: the same calls but fstatat (it does not trace it)", () => {
    const theirs = rows(out.bt.stdout, dir).map((r) => [r[0], r[1], r[2], r[3]]);
    const ours = truth.filter((c) => c[0] !== "newfstatat").map((
      [, path, , err],
    ) => [W, "python3", String(err), path]);
    deepEqual(theirs, ours);
  });

  await t.step("-x: the three failures only", () => {
    deepEqual(rows(out.failed.stdout, dir), expected.filter((r) => r[2] === "-1"));
  });

  await t.step("-t: seconds since the first event, nanosecond digits", () => {
    assertEquals(
      out.time.stdout.split("\n")[0],
      "TIME(s)        PID     COMM                 RET  ERR  PATH",
    );
    const lines = out.time.stdout.split("\n").filter((l) => l.includes(dir));
    assertEquals(lines.length, truth.length);
    const times = lines.map((l) => Number(l.split(/\s+/)[0]));
    assert(lines.every((l) => /^\d+\.\d{9} +\d/.test(l)), lines.join("\n"));
    assert(times.every((s, i) => i === 0 || s >= times[i - 1]) && times.at(-1)! < 5, String(times));
  });

  await t.step("--json: the same calls", () => {
    const events = out.json.stdout.trim().split("\n").map((l) => JSON.parse(l)).filter((e) =>
      e.path.includes(dir)
    );
    deepEqual(
      events.map((e) => [e.pid, e.ret, e.err, e.path]),
      truth.map(([, path, ret, err]) => [work.pid, ret >= 0 ? 0 : -1, err, path]),
    );
  });
  await assertNoneLoaded();
});

kernelTest("statsnoop: SIGINT exits 0 and leaves nothing loaded", async () => {
  const tool = new ToolProcess("statsnoop", ["-p", "1"]);
  await tool.waitForOutput(/PID/);
  await waitForPrograms("statx_out", 1);
  assertEquals((await tool.stop("SIGINT")).code, 0);
  await assertNoneLoaded();
});

for (
  const [args, pattern] of [
    [["-p", "x"], /invalid PID 'x': not an integer/],
    [["-p", "99999999"], /invalid PID '99999999': too large/],
    [["-z"], /unknown option '-z'/],
  ] as [string[], RegExp][]
) {
  Deno.test(`statsnoop ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("statsnoop", args);
    assertEquals(code, 2, stderr);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(stderr.startsWith("statsnoop: ") && pattern.test(stderr), stderr);
  });
}
