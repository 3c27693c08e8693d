/**
 * setuids against a workload whose truth is known: a root Python process
 * drops its effective UID with setresuid(-1, 65534, -1), takes it back with
 * setuid(0), then calls setreuid(-1, 0), setfsuid(0) and setuid(-1)
 * (EINVAL). Our runs and bpftrace's setuids.bt watch it in the same window.
 */
import { deepEqual, equal as assertEquals, ok as assert } from "node:assert/strict";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { PausedWorkload, waitForPrograms } from "../support/event_tools.ts";
import { Spawned } from "../support/process.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";

const PYTHON = "/usr/bin/python3";

/** Waits for "go"; the calls; prints each result (setfsuid: the previous fsuid). */
const WORKLOAD = String.raw`
import ctypes, json, sys
libc = ctypes.CDLL(None, use_errno=True)
sys.stdin.readline()
r = [libc.syscall(117, -1, 65534, -1),   # setresuid
     libc.syscall(105, 0),               # setuid
     libc.syscall(113, -1, 0),           # setreuid
     libc.syscall(122, 0)]               # setfsuid
r.append(-ctypes.get_errno() if libc.syscall(105, -1) < 0 else 0)  # setuid(-1)
print(json.dumps(r), flush=True)
`;

/** The workload's lines without TIME: [PID, COMM, UID, SYSCALL, ARGS... (RET)]. */
function rows(stdout: string, pid: number): string[] {
  return stdout.split("\n").filter((l) => l.split(/\s+/)[1] === String(pid))
    .map((l) => l.slice(9).replace(/\s+/g, " "));
}

async function assertNoneLoaded(): Promise<void> {
  await waitFor(
    async () =>
      !(await loadedProgramNames()).some((n) => n === "setuid_out" || n === "setreuid_out"),
    5000,
    "setuids programs to unload",
  );
}

kernelTest(
  "setuids: five setuid-family calls with UID, arguments, result, as bpftrace",
  async (t) => {
    const work = new PausedWorkload(PYTHON, ["-c", WORKLOAD]);
    const text = new ToolProcess("setuids", []);
    const json = new ToolProcess("setuids", ["--json"]);
    const bt = new Spawned("bpftrace", ["/usr/sbin/setuids.bt"]);
    const out: Record<string, { code: number; stdout: string; stderr: string }> = {};
    let results: number[] = [];
    try {
      await text.waitForOutput(/ARGS \(RET\)/);
      await waitForPrograms("setreuid_out", 2);
      await bt.waitForOutput(/ARGS \(RET\)/, 30_000);
      const done = await work.run();
      assertEquals(done.code, 0, done.stderr);
      results = JSON.parse(done.stdout);
      const seen = (s: string) => s.includes("uid=-1 (-22)") || s.includes('"ret":-22');
      await waitFor(() => [text, json, bt].every((p) => seen(p.stdout)), 15_000, "the last call")
        .catch(() => {});
    } finally {
      out.text = await text.stop();
      out.json = await json.stop();
      out.bt = await bt.stop();
    }
    for (const [name, o] of Object.entries(out)) assertEquals(o.code, 0, `${name}: ${o.stderr}`);
    const W = work.pid;
    const expected = [
      `${W} python3 0 setresuid ruid=-1 euid=65534 suid=-1 (0)`,
      `${W} python3 0 setuid uid=0 (0)`,
      `${W} python3 0 setreuid ruid=-1 euid=0 (0)`,
      `${W} python3 0 setfsuid uid=0 (prevuid=0)`,
      `${W} python3 0 setuid uid=-1 (-22)`,
    ];

    await t.step("the workload's results: four successes, EINVAL", () => {
      deepEqual(results, [0, 0, 0, 0, -22]);
    });

    await t.step("every call once, with the UID before it, arguments and result", () => {
      const lines = out.text.stdout.split("\n");
      assertEquals(lines[1], "TIME     PID    COMM             UID    SYSCALL   ARGS (RET)");
      deepEqual(rows(out.text.stdout, W), expected);
      assert(lines.filter((l) => l.includes(` ${W} `)).every((l) => /^\d\d:\d\d:\d\d /.test(l)));
    });

    await t.step("bpftrace setuids.bt printed the same (it has no setreuid)", () => {
      deepEqual(rows(out.bt.stdout, W), expected.filter((l) => !l.includes("setreuid")));
    });

    await t.step("--json: the same calls", () => {
      const events = out.json.stdout.trim().split("\n").map((l) => JSON.parse(l)).filter((e) =>
        e.pid === W
      );
      deepEqual(events.map((e) => [e.syscall, e.uid, e.ret]), [
        ["setresuid", 0, 0],
        ["setuid", 0, 0],
        ["setreuid", 0, 0],
        ["setfsuid", 0, 0],
        ["setuid", 0, -22],
      ]);
      deepEqual(events[0].args, { ruid: -1, euid: 65534, suid: -1 });
      deepEqual(events[4].args, { uid: -1 });
    });
    await assertNoneLoaded();
  },
);

kernelTest("setuids: SIGINT exits 0 and leaves nothing loaded", async () => {
  const tool = new ToolProcess("setuids", []);
  await tool.waitForOutput(/ARGS/);
  await waitForPrograms("setreuid_out", 1);
  assertEquals((await tool.stop("SIGINT")).code, 0);
  await assertNoneLoaded();
});

for (const args of [["-p", "1"], ["extra"]]) {
  Deno.test(`setuids ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("setuids", args);
    assertEquals(code, 2, stderr);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(stderr.startsWith("setuids: "), stderr);
  });
}
