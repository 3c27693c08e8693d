/**
 * exitsnoop against a workload whose truth is known: a Python process that
 * runs a copy of sh named "exwl" six times (exit codes 0 to 4, then killed
 * by its own SIGUSR1) and starts three threads named "exwl-thr" that end.
 * Several exitsnoop runs with different flags, and libbpf-tools exitsnoop,
 * watch the same workload in the same window.
 */
import { deepEqual, equal as assertEquals, ok as assert } from "node:assert/strict";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { PausedWorkload, ReferenceTool, waitForPrograms } from "../support/event_tools.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";

const PYTHON = "/usr/bin/python3";
const CGROUP_ROOT = "/sys/fs/cgroup/unified";

/** Waits for "go"; six exwl children, three named threads; prints their ids as JSON. */
const WORKLOAD = String.raw`
import ctypes, json, subprocess, sys, threading
exwl = sys.argv[1]
libc = ctypes.CDLL(None)
sys.stdin.readline()
children = []
for code in range(5):
    p = subprocess.Popen([exwl, "-c", "exit %d" % code]); p.wait()
    children.append({"pid": p.pid, "code": code, "signal": 0})
p = subprocess.Popen([exwl, "-c", "kill -USR1 $$"]); p.wait()
children.append({"pid": p.pid, "code": 0, "signal": 10})
tids = []
def thread():
    libc.prctl(15, b"exwl-thr", 0, 0, 0)
    tids.append(threading.get_native_id())
for _ in range(3):
    t = threading.Thread(target=thread); t.start(); t.join()
print(json.dumps({"children": children, "tids": tids}), flush=True)
`;

interface Truth {
  children: { pid: number; code: number; signal: number }[];
  tids: number[];
}

/** The EXIT_CODE column for a child. */
function ended(c: { code: number; signal: number }): string {
  if (c.signal) return `signal ${c.signal} (User defined signal 1)`;
  return c.code ? `code ${c.code}` : "0";
}

/** One line split into its columns (comm has no spaces here). */
function columns(line: string): string[] {
  const m = /^(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+([\d.]+)\s+(.*)$/.exec(line);
  return m ? m.slice(1) : [];
}

function linesOf(stdout: string, re: RegExp): string[][] {
  return stdout.split("\n").map(columns).filter((c) => c.length && re.test(c[0]));
}

async function assertNoneLoaded(): Promise<void> {
  await waitFor(
    async () => !(await loadedProgramNames()).includes("exitsnoop"),
    5000,
    "exitsnoop programs to unload",
  );
}

kernelTest(
  "exitsnoop: six exits of a named binary, threads with -T, as libbpf-tools",
  async (t) => {
    const dir = Deno.makeTempDirSync({ prefix: "exitsnoop-test-" });
    Deno.copyFileSync("/bin/sh", `${dir}/exwl`);
    Deno.chmodSync(`${dir}/exwl`, 0o755);
    const inside = `${CGROUP_ROOT}/bpftk-exitsnoop-in`,
      empty = `${CGROUP_ROOT}/bpftk-exitsnoop-empty`;
    for (const d of [inside, empty]) Deno.mkdirSync(d, { recursive: true });
    const work = new PausedWorkload(PYTHON, ["-c", WORKLOAD, `${dir}/exwl`]);
    const W = String(work.pid);
    Deno.writeTextFileSync(`${inside}/cgroup.procs`, W);
    const runs = {
      plain: new ToolProcess("exitsnoop", []),
      failed: new ToolProcess("exitsnoop", ["-x"]),
      threads: new ToolProcess("exitsnoop", ["-T"]),
      pid: new ToolProcess("exitsnoop", ["-T", "-p", W]),
      time: new ToolProcess("exitsnoop", ["-t"]),
      cgroup: new ToolProcess("exitsnoop", ["--cgroup", inside]),
      none: new ToolProcess("exitsnoop", ["-c", empty]),
      json: new ToolProcess("exitsnoop", ["--json"]),
    };
    const ref = new ReferenceTool("/usr/sbin/exitsnoop", []);
    const out: Record<string, { code: number; stdout: string; stderr: string }> = {};
    let truth: Truth = { children: [], tids: [] };
    try {
      for (const [name, p] of Object.entries(runs)) {
        if (name !== "json") await p.waitForOutput(/PCOMM +PID/);
      }
      await waitForPrograms("exitsnoop", Object.keys(runs).length);
      await ref.waitForOutput(/PCOMM +PID/);
      const done = await work.run();
      assertEquals(done.code, 0, done.stderr);
      truth = JSON.parse(done.stdout);
      const seen = (s: string) => s.includes(`python3 `) && s.includes(` ${W} `);
      await waitFor(
        () =>
          Object.values(runs).every((p) =>
            p === runs.json || p === runs.none || p.stdout.includes(`${W}`)
          ) &&
          seen(ref.stdout) && runs.json.stdout.includes(`"pid":${W}`),
        15_000,
        "the workload's exit in every run",
      ).catch(() => {}); // the steps say what is missing
    } finally {
      for (const [name, p] of Object.entries(runs)) out[name] = await p.stop();
      out.ref = await ref.stop();
      Deno.removeSync(dir, { recursive: true });
      for (const d of [inside, empty]) {
        await waitFor(
          () => {
            try {
              Deno.removeSync(d);
              return true;
            } catch {
              return false;
            }
          },
          5000,
          `removal of ${d}`,
        ).catch(() => {});
      }
    }
    for (const [name, o] of Object.entries(out)) assertEquals(o.code, 0, `${name}: ${o.stderr}`);
    const pid = work.pid;
    const expected = truth.children.map((
      c,
    ) => ["exwl", String(c.pid), String(pid), String(c.pid), ended(c)]);
    const noAge = (c: string[]) => [c[0], c[1], c[2], c[3], c[5]];

    await t.step("the workload did what we think: six children, three threads", () => {
      assertEquals(truth.children.length, 6);
      assertEquals(truth.tids.length, 3);
    });

    await t.step("six exwl lines: PID, PPID, TID, exit code or signal", () => {
      assertEquals(
        out.plain.stdout.split("\n")[0],
        "PCOMM            PID     PPID    TID     AGE(s)  EXIT_CODE",
      );
      deepEqual(linesOf(out.plain.stdout, /^exwl$/).map(noAge), expected);
      // thread exits are not process exits
      deepEqual(linesOf(out.plain.stdout, /^exwl-thr$/), []);
    });

    await t.step("libbpf-tools exitsnoop printed the same lines (AGE within 0.01 s)", () => {
      const ours = linesOf(out.plain.stdout, /^exwl/), theirs = linesOf(out.ref.stdout, /^exwl/);
      deepEqual(theirs.map(noAge), ours.map(noAge));
      theirs.forEach((c, i) =>
        assert(Math.abs(Number(c[4]) - Number(ours[i][4])) <= 0.011, `${c} ${ours[i]}`)
      );
    });

    await t.step("-x: only the failed exits (codes 1-4 and the signal)", () => {
      deepEqual(linesOf(out.failed.stdout, /^exwl/).map(noAge), expected.slice(1));
    });

    await t.step("-T: the three threads too, TID != PID", () => {
      const threads = linesOf(out.threads.stdout, /^exwl-thr$/).map(noAge);
      // a thread's parent is its process's parent: this test
      deepEqual(
        threads,
        truth.tids.map((tid) => ["exwl-thr", String(pid), String(Deno.pid), String(tid), "0"]),
      );
      deepEqual(linesOf(out.threads.stdout, /^exwl$/).map(noAge), expected);
    });

    await t.step("-T -p PID: the workload's threads and its own exit only", () => {
      const all = linesOf(out.pid.stdout, /./);
      deepEqual(all.map((c) => [c[0], c[1], c[3]]), [
        ...truth.tids.map((tid) => ["exwl-thr", String(pid), String(tid)]),
        ["python3", String(pid), String(pid)],
      ]);
    });

    await t.step("-t: a HH:MM:SS column", () => {
      const lines = out.time.stdout.split("\n");
      assertEquals(lines[0], "TIME(s)  PCOMM            PID     PPID    TID     AGE(s)  EXIT_CODE");
      const mine = lines.filter((l) => / exwl /.test(l));
      assertEquals(mine.length, 6);
      for (const l of mine) assert(/^\d\d:\d\d:\d\d exwl {13}\d/.test(l), l);
    });

    await t.step("--cgroup: the workload's exits inside the cgroup; none in an empty one", () => {
      deepEqual(linesOf(out.cgroup.stdout, /^exwl$/).map(noAge), expected);
      deepEqual(
        linesOf(out.cgroup.stdout, /./).map((c) => c[0]).sort(),
        [...Array(6).fill("exwl"), "python3"].sort(),
      );
      assertEquals(
        out.none.stdout.trim(),
        "PCOMM            PID     PPID    TID     AGE(s)  EXIT_CODE",
      );
    });

    await t.step("--json: the same exits, numbers as numbers", () => {
      const events = out.json.stdout.trim().split("\n").map((l) => JSON.parse(l))
        .filter((e) => e.comm === "exwl");
      deepEqual(
        events.map((e) => [e.pid, e.ppid, e.tid, e.exitCode, e.signal, e.coreDumped]),
        truth.children.map((c) => [c.pid, pid, c.pid, c.code, c.signal, false]),
      );
      assert(events.every((e) => typeof e.age === "number" && typeof e.time === "string"));
    });
    await assertNoneLoaded();
  },
);

kernelTest("exitsnoop: SIGINT exits 0 and leaves nothing loaded", async () => {
  const tool = new ToolProcess("exitsnoop", ["-p", "1"]);
  await tool.waitForOutput(/PCOMM/);
  await waitForPrograms("exitsnoop", 1);
  const { code } = await tool.stop("SIGINT");
  assertEquals(code, 0);
  await assertNoneLoaded();
});

for (
  const [args, pattern] of [
    [["-p", "x"], /^exitsnoop: invalid PID 'x': not an integer/],
    [["-p", "0"], /^exitsnoop: invalid PID '0': must be at least 1/],
    [["-c", "/nonexistent"], /^exitsnoop: -c \/nonexistent: no such cgroup directory/],
    [["-z"], /^exitsnoop: unknown option '-z'/],
    [["extra"], /^exitsnoop: unrecognized positional argument: 'extra'/],
  ] as [string[], RegExp][]
) {
  Deno.test(`exitsnoop ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("exitsnoop", args);
    assertEquals(code, 2, stderr);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(pattern.test(stderr), stderr);
  });
}
