/**
 * naptime against sleeps whose requested times are known: a process named
 * "napper" calls nanosleep(2) 3 times for 0.2 s, clock_nanosleep(2) 3 times
 * for 0.1 s (relative), and Python's time.sleep 3 times for 0.05 s (an
 * absolute CLOCK_MONOTONIC deadline: what is left of it, 0.04 to 0.05 s).
 * naptime must print those 9 lines for it, with its parent, and nothing
 * else for it, with its parent's PID as getppid() gives it; -p PID and
 * --json the same.
 *
 * Cross-check: bpftrace's naptime.bt, run in the same window, traces
 * nanosleep only: it must print the 3 lines of 0.200 s, as ours do.
 */
import {
  deepEqual as assertDeepEqual,
  equal as assertEquals,
  ok as assert,
} from "node:assert/strict";
import { waitForPrograms } from "../support/event_tools.ts";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { Spawned } from "../support/process.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";

const NAPPER = `
import ctypes, os, sys, time
open("/proc/self/comm", "w").write("napper")
libc = ctypes.CDLL(None, use_errno=True)
class TS(ctypes.Structure):
    _fields_ = [("s", ctypes.c_long), ("ns", ctypes.c_long)]
SYS_nanosleep = {"x86_64": 35, "aarch64": 101}[os.uname().machine]
print(f"pid {os.getpid()} ppid {os.getppid()}", flush=True)
sys.stdin.readline()
for _ in range(3):
    assert libc.syscall(SYS_nanosleep, ctypes.byref(TS(0, 200_000_000)), None) == 0
for _ in range(3):
    assert libc.clock_nanosleep(1, 0, ctypes.byref(TS(0, 100_000_000)), None) == 0
for _ in range(3):
    time.sleep(0.05)
`;

interface Line {
  ppid: number;
  pcomm: string;
  pid: number;
  comm: string;
  seconds: string;
}

function parse(stdout: string, fromLine: number): Line[] {
  return stdout.split("\n").slice(fromLine).filter((l) => /^\d\d:\d\d:\d\d /.test(l)).map((l) => {
    const m = l.match(/^\d\d:\d\d:\d\d +(\d+) +(.{16}) (\d+) +(.{16}) (\d+\.\d{3})$/);
    assert(m, `bad line '${l}'`);
    return {
      ppid: Number(m[1]),
      pcomm: m[2].trimEnd(),
      pid: Number(m[3]),
      comm: m[4].trimEnd(),
      seconds: m[5],
    };
  });
}

kernelTest(
  "naptime: 9 sleeps of known length by napper, nanosleep ones as naptime.bt",
  async () => {
    const napper = new Spawned("python3", ["-c", NAPPER], { stdin: "piped" });
    await napper.waitForOutput(/^pid \d+ ppid \d+$/m);
    const [, pid, ppid] = napper.stdout.match(/^pid (\d+) ppid (\d+)$/m)!.map(Number);
    const before = (await loadedProgramNames()).filter((n) => n === "naptime").length;
    const all = new ToolProcess("naptime", []);
    const byPid = new ToolProcess("naptime", ["-p", String(pid)]);
    const json = new ToolProcess("naptime", ["--json", "-p", String(pid)]);
    const bt = new Spawned("bpftrace", ["/usr/sbin/naptime.bt"]);
    const tools = [all, byPid, json, bt];
    try {
      await all.waitForOutput(/SECONDS$/m);
      await byPid.waitForOutput(/SECONDS$/m);
      await bt.waitForOutput(/SECONDS$/m);
      await waitForPrograms("naptime", before + 3);
      await napper.write("go\n");
      await napper.closeStdin();
      assertEquals((await napper.wait()).code, 0);
      await new Promise((r) => setTimeout(r, 300));
      const [a, p, j, b] = await Promise.all(tools.map((t) => t.stop()));
      for (const x of [a, p, j]) assertEquals(x.code, 0, x.stderr);

      assertEquals(
        a.stdout.split("\n").slice(0, 2).join("\n"),
        "Tracing sleeps. Hit Ctrl-C to end.\n" +
          "TIME     PPID   PCOMM            PID    COMM             SECONDS",
      );
      const mine = parse(a.stdout, 2).filter((l) => l.pid === pid);
      assert(mine.every((l) => l.comm === "napper" && l.ppid === ppid), a.stdout);
      const secs = mine.map((l) => l.seconds);
      assertDeepEqual(secs.slice(0, 6), ["0.200", "0.200", "0.200", "0.100", "0.100", "0.100"]);
      assertEquals(secs.length, 9, a.stdout);
      for (const s of secs.slice(6)) assert(Number(s) >= 0.04 && Number(s) <= 0.05, s);

      // -p: only napper, the same lines.
      const only = parse(p.stdout, 2);
      assertDeepEqual(only.map((l) => l.seconds), secs);
      assert(only.every((l) => l.pid === pid));
      const objs = j.stdout.trim().split("\n").map((l) => JSON.parse(l));
      const ms = (o: { seconds: number }) => Math.floor(Math.round(o.seconds * 1e9) / 1e6);
      assertDeepEqual(objs.map((o) => (ms(o) / 1000).toFixed(3)), secs);

      // naptime.bt: nanosleep(2) only: the three 0.2 s sleeps.
      // bpftrace prints time() and printf() as separate events: lines of two CPUs
      // may interleave ("T1 T2 line1\nline2"), so napper's fields are found anywhere.
      const theirs = [
        ...b.stdout.matchAll(/(\d+) +(.{16}) (\d+) +napper +(\d+\.\d{3})$/gm),
      ].map((m) => ({ pcomm: m[2].trimEnd(), pid: Number(m[3]), seconds: m[4] }))
        .filter((l) => l.pid === pid);
      assertDeepEqual(theirs.map((l) => l.seconds), ["0.200", "0.200", "0.200"], b.stdout);
      // Its PPID is the forking thread's TID; PCOMM the same thread's name as ours.
      assert(theirs.every((l) => l.pcomm === mine[0].pcomm), b.stdout);
    } finally {
      for (const t of tools) t.killTree();
      napper.killTree();
    }
    await waitFor(
      async () => (await loadedProgramNames()).filter((n) => n === "naptime").length === before,
      3000,
      "naptime to unload",
    );
  },
  { commands: ["bpftrace"] },
);

for (
  const [args, pattern] of [
    [["-p", "0"], /^naptime: invalid PID '0': must be at least 1/],
    [["1"], /^naptime: unrecognized positional argument: '1'/],
    [["-x"], /^naptime: unknown option '-x'/],
  ] as [string[], RegExp][]
) {
  Deno.test(`naptime ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("naptime", args);
    assertEquals(code, 2, stderr);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(pattern.test(stderr), stderr);
  });
}
