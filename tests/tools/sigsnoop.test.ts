/**
 * sigsnoop and killsnoop against a workload whose truth is known: a Python
 * process sends SIGUSR1 ten times with kill() to a child that handles it,
 * SIGUSR2 once with tkill() and once with tgkill(), SIGUSR1 to a PID that does
 * not exist (ESRCH), and SIGTERM. Our runs with several flags and
 * libbpf-tools' sigsnoop and killsnoop watch the same workload.
 */
import { deepEqual, equal as assertEquals, ok as assert } from "node:assert/strict";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { PausedWorkload, ReferenceTool, waitForPrograms } from "../support/event_tools.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";

const PYTHON = "/usr/bin/python3";

/** Waits for "go"; sends the signals; prints the target and the missing PID as JSON. */
const WORKLOAD = String.raw`
import ctypes, json, os, signal, subprocess, sys
libc = ctypes.CDLL(None, use_errno=True)
child = subprocess.Popen([sys.executable, "-c",
    "import signal, sys\n"
    "signal.signal(signal.SIGUSR1, lambda *a: None)\n"
    "signal.signal(signal.SIGUSR2, lambda *a: None)\n"
    "print('ready', flush=True)\n"
    "sys.stdin.read()\n"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
child.stdout.readline()
missing = 4194000
while os.path.exists("/proc/%d" % missing): missing -= 1
sys.stdin.readline()
for _ in range(10):
    os.kill(child.pid, signal.SIGUSR1)
libc.syscall(200, child.pid, signal.SIGUSR2)             # tkill
libc.syscall(234, child.pid, child.pid, signal.SIGUSR2)  # tgkill
try:
    os.kill(missing, signal.SIGUSR1)
except ProcessLookupError:
    pass
os.kill(child.pid, signal.SIGTERM)
child.wait()
print(json.dumps({"target": child.pid, "missing": missing}), flush=True)
`;

const HEADER = "TIME     PID     COMM             SIG       TPID    RESULT";

/** Lines as [PID, COMM, SIG, TPID, RESULT] (TIME left out). */
function rows(stdout: string): string[][] {
  return stdout.split("\n").filter((l) => /^\d\d:\d\d:\d\d /.test(l))
    .map((l) => l.split(/\s+/).filter((f) => f !== "").slice(1));
}

async function assertNoneLoaded(names: string[]): Promise<void> {
  await waitFor(
    async () => !(await loadedProgramNames()).some((n) => names.includes(n)),
    5000,
    "sigsnoop/killsnoop programs to unload",
  );
}

kernelTest("killsnoop and sigsnoop: kill -USR1 x10 and more, as libbpf-tools", async (t) => {
  const work = new PausedWorkload(PYTHON, ["-c", WORKLOAD]);
  const W = String(work.pid);
  const runs = {
    kill: new ToolProcess("killsnoop", ["-p", W]),
    killFailed: new ToolProcess("killsnoop", ["-x", "-p", W]),
    killUsr1: new ToolProcess("killsnoop", ["-s", "USR1", "-p", W]),
    killNames: new ToolProcess("killsnoop", ["-n", "-p", W]),
    sig: new ToolProcess("sigsnoop", ["-p", W]),
    sigFailed: new ToolProcess("sigsnoop", ["-x", "-p", W]),
    sigKill: new ToolProcess("sigsnoop", ["-k", "-s", "10", "-p", W]),
    sigJson: new ToolProcess("sigsnoop", ["--json", "-p", W]),
    killJson: new ToolProcess("killsnoop", ["--json", "-p", W]),
  };
  const refs = {
    kill: new ReferenceTool("/usr/sbin/killsnoop", ["-p", W]),
    sig: new ReferenceTool("/usr/sbin/sigsnoop", ["-p", W]),
  };
  const out: Record<string, { code: number; stdout: string; stderr: string }> = {};
  let truth = { target: 0, missing: 0 };
  try {
    for (const [name, p] of Object.entries(runs)) {
      if (!name.endsWith("Json")) await p.waitForOutput(/TIME +PID/);
    }
    await waitForPrograms("sig_trace", 3);
    await waitForPrograms("tgkill_exit", 6);
    for (const r of Object.values(refs)) await r.waitForOutput(/TIME +PID/);
    const done = await work.run();
    assertEquals(done.code, 0, done.stderr);
    truth = JSON.parse(done.stdout);
    const sigterm = (s: string) => / 15 /.test(s) || /SIGTERM/.test(s) || /"sig":15/.test(s);
    await waitFor(
      () =>
        [runs.kill, runs.killNames, runs.sig, runs.sigJson, runs.killJson, refs.kill, refs.sig]
          .every((p) => sigterm(p.stdout)),
      15_000,
      "the SIGTERM in every run",
    ).catch(() => {}); // the steps say what is missing
  } finally {
    for (const [name, p] of Object.entries(runs)) out[name] = await p.stop();
    for (const [name, p] of Object.entries(refs)) out[`ref_${name}`] = await p.stop();
  }
  for (const [name, o] of Object.entries(out)) assertEquals(o.code, 0, `${name}: ${o.stderr}`);
  const T = String(truth.target), M = String(truth.missing);
  const sent = (sig: string, tpid = T, ret = "0") => [W, "python3", sig, tpid, ret];
  const kills = [
    ...Array(10).fill(sent("10")),
    sent("12"),
    sent("12"),
    sent("10", M, "-3"),
    sent("15"),
  ];

  await t.step("killsnoop: ten SIGUSR1 lines with the target PID, tkill, tgkill, ESRCH", () => {
    assertEquals(out.kill.stdout.split("\n")[0], HEADER);
    deepEqual(rows(out.kill.stdout), kills);
    assertEquals(rows(out.kill.stdout).filter((r) => r[2] === "10" && r[3] === T).length, 10);
  });

  await t.step("libbpf-tools killsnoop printed the same lines", () => {
    deepEqual(rows(out.ref_kill.stdout), kills);
  });

  await t.step("killsnoop -x: the failed kill only; -s USR1: the eleven SIGUSR1s", () => {
    deepEqual(rows(out.killFailed.stdout), [sent("10", M, "-3")]);
    deepEqual(rows(out.killUsr1.stdout), kills.filter((r) => r[2] === "10"));
  });

  await t.step("killsnoop -n: signal names", () => {
    const named = { "10": "SIGUSR1", "12": "SIGUSR2", "15": "SIGTERM" } as Record<string, string>;
    deepEqual(rows(out.killNames.stdout), kills.map((r) => [r[0], r[1], named[r[2]], r[3], r[4]]));
  });

  // signal_generate: the thirteen that reached the child, then the workload's
  // own exit sends SIGCHLD to its parent (TPID: the parent's thread that
  // started it, some thread of this test's Deno: shown as "*")
  const generated = [...kills.filter((r) => r[3] === T), sent("17", "*")];
  const parentTid = (r: unknown[]) => String(r[2]) === "17" ? [...r.slice(0, 3), "*", r[4]] : r;

  await t.step("sigsnoop: the fourteen signals generated, as libbpf-tools sigsnoop", () => {
    assertEquals(out.sig.stdout.split("\n")[0], HEADER);
    deepEqual(rows(out.sig.stdout).map(parentTid), generated);
    deepEqual(rows(out.ref_sig.stdout).map(parentTid), generated);
  });

  await t.step("sigsnoop -x: none failed; -k -s 10: the kill calls with SIGUSR1", () => {
    deepEqual(rows(out.sigFailed.stdout), []);
    deepEqual(rows(out.sigKill.stdout), kills.filter((r) => r[2] === "10"));
  });

  await t.step("--json: the same signals, numbers as numbers", () => {
    const parse = (s: string) => s.trim().split("\n").filter((l) => l).map((l) => JSON.parse(l));
    const fields = (e: Record<string, unknown>) => [e.pid, e.comm, e.sig, e.tpid, e.result];
    const asNumbers = (
      r: string[],
    ) => [Number(r[0]), r[1], Number(r[2]), Number(r[3]), Number(r[4])];
    deepEqual(parse(out.killJson.stdout).map(fields), kills.map(asNumbers));
    deepEqual(
      parse(out.sigJson.stdout).map(fields).map(parentTid),
      generated.map(asNumbers).map(parentTid),
    );
    assert(parse(out.sigJson.stdout).every((e) => typeof e.time === "string"));
  });
  await assertNoneLoaded(["sig_trace", "kill_entry", "kill_exit", "tgkill_exit"]);
});

kernelTest("killsnoop and sigsnoop: SIGINT exits 0 and leaves nothing loaded", async () => {
  for (const tool of ["killsnoop", "sigsnoop"]) {
    const p = new ToolProcess(tool, ["-p", "1"]);
    await p.waitForOutput(/TIME +PID/);
    const { code } = await p.stop("SIGINT");
    assertEquals(code, 0);
  }
  await assertNoneLoaded(["sig_trace", "kill_entry", "kill_exit", "tgkill_exit"]);
});

for (const tool of ["killsnoop", "sigsnoop"]) {
  for (
    const [args, pattern] of [
      [["-p", "x"], /invalid PID 'x': not an integer/],
      [["-s", "SIGBOGUS"], /invalid signal 'SIGBOGUS'/],
      [["-s", "65"], /invalid signal '65'/],
      [["-z"], /unknown option '-z'/],
    ] as [string[], RegExp][]
  ) {
    Deno.test(`${tool} ${args.join(" ")}: usage error, one line, exit 2`, async () => {
      const { code, stdout, stderr } = await runToolOnce(tool, args);
      assertEquals(code, 2, stderr);
      assertEquals(stdout, "");
      assertEquals(stderr.trim().split("\n").length, 1, stderr);
      assert(stderr.startsWith(`${tool}: `) && pattern.test(stderr), stderr);
    });
  }
}
