/**
 * opensnoop against workloads whose truth is known: a Python script that
 * makes known open(), openat() and openat2() calls (successes with their fd,
 * ENOENT, O_CREAT with a mode, a path with an escape character) and prints
 * what each returned; and an open storm. Several opensnoop runs with
 * different flags, and libbpf-tools opensnoop, watch the same workload.
 */
import { deepEqual, equal as assertEquals, ok as assert } from "node:assert/strict";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import {
  cpuNs,
  lostInStderr,
  PausedWorkload,
  ReferenceTool,
  waitForPrograms,
} from "../support/event_tools.ts";
import type { Spawned } from "../support/process.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";

const PYTHON = "/usr/bin/python3";

/**
 * Waits for "go", then opens: an existing file with open(2), openat(2) and
 * openat2(2); a missing one; a new one with O_CREAT and mode 0640; a missing
 * one whose name holds ESC. Prints one JSON line per call.
 */
const WORKLOAD = String.raw`
import ctypes, json, os, sys
dir = sys.argv[1]
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
AT_FDCWD = -100
class OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]
def call(kind, path, flags, mode=0):
    p = path.encode("utf-8", "surrogateescape")
    if kind == "open":
        r = libc.syscall(2, p, flags, mode)
    elif kind == "openat":
        r = libc.syscall(257, AT_FDCWD, p, flags, mode)
    else:
        how = OpenHow(flags, mode, 0)
        r = libc.syscall(437, AT_FDCWD, p, ctypes.byref(how), ctypes.sizeof(how))
    err = ctypes.get_errno() if r < 0 else 0
    print(json.dumps({"kind": kind, "path": path, "flags": flags, "mode": mode,
                      "fd": r if r >= 0 else -1, "err": err}), flush=True)
    if r >= 0: os.close(r)
sys.stdin.readline()
exists = dir + "/marker-exists"
call("open", exists, os.O_RDONLY)
call("openat", exists, os.O_RDONLY | os.O_CLOEXEC)
call("openat2", exists, os.O_RDONLY)
call("openat", "/nonexistent/marker-enoent", os.O_RDONLY)
call("openat", dir + "/marker-created", os.O_WRONLY | os.O_CREAT, 0o640)
call("open", "/nonexistent/marker-esc-\x1b[2J", os.O_RDONLY)
`;

interface Open {
  kind: string;
  path: string;
  flags: number;
  mode: number;
  fd: number;
  err: number;
}

/** opensnoop's text line for an open (libbpf-tools' format). */
function expectedLine(o: Open, pid: number, opts: { escape?: boolean; extended?: boolean } = {}) {
  const path = opts.escape === false ? o.path : o.path.replaceAll("\x1b", "\\x1b");
  const hasMode = o.mode !== 0 || (o.flags & 0o100) !== 0;
  const ext = opts.extended
    ? `${o.flags.toString(8).padStart(8, "0")} ${
      hasMode ? o.mode.toString(8).padStart(4, "0") + " " : "n/a  "
    }`
    : "";
  return `${String(pid).padEnd(6)} ${"python3".padEnd(16)} ${String(o.fd).padStart(3)} ` +
    `${String(o.err).padStart(3)} ${ext}${path}`;
}

function markerLines(stdout: string): string[] {
  return stdout.split("\n").filter((l) => l.includes("/marker-"));
}

async function assertNoneLoaded(): Promise<void> {
  await waitFor(
    async () => !(await loadedProgramNames()).some((n) => n.startsWith("opensnoop_")),
    5000,
    "opensnoop programs to unload",
  );
}

kernelTest(
  "opensnoop: known opens appear with their FD/ERR and path, as libbpf-tools",
  async (t) => {
    const dir = Deno.makeTempDirSync({ prefix: "opensnoop-test-" });
    Deno.writeTextFileSync(`${dir}/marker-exists`, "x");
    const work = new PausedWorkload(PYTHON, ["-c", WORKLOAD, dir]);
    const W = String(work.pid);
    const small = { env: { BPFTK_RING_BYTES: String(1 << 20) } };
    const runs = {
      plain: new ToolProcess("opensnoop", ["-p", W]),
      failed: new ToolProcess("opensnoop", ["-x", "-p", W], small),
      extended: new ToolProcess("opensnoop", ["-e", "-p", W], small),
      json: new ToolProcess("opensnoop", ["--json", "-p", W], small),
      creat: new ToolProcess("opensnoop", ["-f", "O_CREAT", "-p", W], small),
      columns: new ToolProcess("opensnoop", ["-T", "-U", "-n", "pyth", "-t", W], small),
      noName: new ToolProcess("opensnoop", ["-n", "no-such-comm", "-p", W], small),
      otherUser: new ToolProcess("opensnoop", ["-u", "65534"], small),
    };
    const ref = new ReferenceTool("/usr/sbin/opensnoop", ["-p", W]);
    let truth: Open[] = [];
    const out: Record<string, { code: number; stdout: string; stderr: string }> = {};
    try {
      for (const [name, p] of Object.entries(runs)) {
        if (name !== "json") await p.waitForOutput(/PID +COMM/);
      }
      await waitForPrograms("opensnoop_a2out", Object.keys(runs).length);
      await ref.waitForOutput(/PID +COMM/);
      const done = await work.run();
      assertEquals(done.code, 0, done.stderr);
      truth = done.stdout.trim().split("\n").map((l) => JSON.parse(l));
      // Stop once the workload's opens are all shown (not after a pause).
      const openats = truth.filter((o) => o.kind === "openat").length;
      await waitFor(
        () =>
          markerLines(runs.plain.stdout).length >= truth.length &&
          markerLines(ref.stdout).length >= openats,
        15_000,
        `${truth.length} opens shown`,
      ).catch(() => {}); // the steps below say what is missing
    } finally {
      for (const [name, p] of Object.entries(runs)) out[name] = await p.stop();
      out.ref = await ref.stop();
      Deno.removeSync(dir, { recursive: true });
    }
    for (const [name, o] of Object.entries(out)) assertEquals(o.code, 0, `${name}: ${o.stderr}`);
    const pid = work.pid;

    await t.step("the workload's truth is what we think it is", () => {
      deepEqual(truth.map((o) => [o.kind, o.fd >= 0, o.err]), [
        ["open", true, 0],
        ["openat", true, 0],
        ["openat2", true, 0],
        ["openat", false, 2],
        ["openat", true, 0],
        ["open", false, 2],
      ]);
    });

    await t.step("every open once: PID, COMM, FD, ERR, PATH (open, openat, openat2)", () => {
      deepEqual(markerLines(out.plain.stdout), truth.map((o) => expectedLine(o, pid)));
      assertEquals(out.plain.stdout.split("\n")[0], "PID    COMM              FD ERR PATH");
    });

    await t.step("libbpf-tools opensnoop printed the same lines for openat (raw bytes)", () => {
      // libbpf-tools 0.26 here misses open(2) and openat2(2); we do not.
      deepEqual(
        markerLines(out.ref.stdout),
        truth.filter((o) => o.kind === "openat").map((o) =>
          expectedLine(o, pid, { escape: false })
        ),
      );
    });

    await t.step("-x: only the failed opens", () => {
      deepEqual(
        markerLines(out.failed.stdout),
        truth.filter((o) => o.err).map((o) => expectedLine(o, pid)),
      );
    });

    await t.step("-e: FLAGS and MODE (openat2's come from struct open_how)", () => {
      assertEquals(
        out.extended.stdout.split("\n")[0],
        "PID    COMM              FD ERR FLAGS    MODE  PATH",
      );
      deepEqual(
        markerLines(out.extended.stdout),
        truth.map((o) => expectedLine(o, pid, { extended: true })),
      );
    });

    await t.step("--json: the same numbers, exact bytes", () => {
      const events = out.json.stdout.trim().split("\n").map((l) => JSON.parse(l))
        .filter((e) => e.path.includes("/marker-"));
      deepEqual(
        events.map((e) => [e.pid, e.tid, e.comm, e.fd, e.err, e.flags, e.mode, e.path]),
        truth.map((o) => [pid, pid, "python3", o.fd, o.err, o.flags, o.mode, o.path]),
      );
    });

    await t.step("-f O_CREAT: only the open that creates", () => {
      deepEqual(markerLines(out.creat.stdout), [expectedLine(truth[4], pid)]);
    });

    await t.step("-T -U -n NAME -t TID: TIME and UID columns, name and thread filters", () => {
      const lines = out.columns.stdout.split("\n");
      assertEquals(lines[0], "TIME     UID     PID    COMM              FD ERR PATH");
      const mine = markerLines(out.columns.stdout);
      assertEquals(mine.length, truth.length);
      mine.forEach((l, i) => {
        assert(/^\d\d:\d\d:\d\d 0 {7}/.test(l), l);
        assert(l.endsWith(expectedLine(truth[i], pid)), l);
      });
    });

    await t.step("-n with no match, -u 65534: nothing of the workload", () => {
      deepEqual(markerLines(out.noName.stdout), []);
      deepEqual(markerLines(out.otherUser.stdout), []);
    });

    await assertNoneLoaded();
  },
);

/** Waits for "go", then opens N missing files as fast as it can; prints N. */
const STORM = String.raw`
import os, sys
n = int(sys.argv[1])
sys.stdin.readline()
for i in range(n):
    try:
        os.open("/nonexistent/storm-marker-%d" % i, os.O_RDONLY)
    except OSError:
        pass
print(n, flush=True)
`;

kernelTest(
  "opensnoop under an open storm: lines + reported lost == opens, as libbpf-tools",
  async () => {
    const n = 200_000;
    const storm = new PausedWorkload(PYTHON, ["-c", STORM, String(n)]);
    const S = String(storm.pid);
    const runs = {
      ringbuf: new ToolProcess("opensnoop", ["-p", S]),
      perf: new ToolProcess("opensnoop", ["-p", S], { env: { BPFTK_EVENT_BUFFER: "perf" } }),
      // a 64 KiB ring buffer, and the reader frozen meanwhile: loss for sure
      starved: new ToolProcess("opensnoop", ["-p", S], { env: { BPFTK_RING_BYTES: "65536" } }),
    };
    const ref = new ReferenceTool("/usr/sbin/opensnoop", ["-p", S]);
    const out: Record<string, { code: number; stdout: string; stderr: string }> = {};
    const cpu: Record<string, number> = {};
    let seconds = 0;
    try {
      for (const p of Object.values(runs)) await p.waitForOutput(/PID +COMM/);
      await ref.waitForOutput(/PID +COMM/);
      const before = { ringbuf: cpuNs(runs.ringbuf.pid), ref: cpuNs(ref.pid) };
      runs.starved.kill("SIGSTOP");
      const t0 = performance.now();
      const done = await storm.run();
      seconds = (performance.now() - t0) / 1000;
      assertEquals(done.stdout.trim(), String(n));
      runs.starved.kill("SIGCONT");
      // Wait until the readers have caught up: every open shown or reported lost.
      const accounted = (p: Spawned) =>
        p.stdout.split("\n").filter((l) => l.includes("storm-marker")).length +
        lostInStderr(p.stderr);
      await waitFor(
        () => accounted(runs.ringbuf) >= n && accounted(runs.perf) >= n,
        30_000,
        `${n} opens accounted for`,
      ).catch(() => {});
      cpu.ringbuf = cpuNs(runs.ringbuf.pid) - before.ringbuf;
      cpu.ref = cpuNs(ref.pid) - before.ref;
    } finally {
      for (const [name, p] of Object.entries(runs)) {
        p.kill("SIGCONT");
        out[name] = await p.stop();
      }
      out.ref = await ref.stop();
    }
    const report = [`open storm: ${n} opens in ${seconds.toFixed(2)} s with all four tracing`];
    for (const [name, o] of Object.entries(out)) {
      assertEquals(o.code, 0, `${name}: ${o.stderr}`);
      const lines = o.stdout.split("\n").filter((l) => l.includes("storm-marker")).length;
      const lost = lostInStderr(o.stderr);
      report.push(`${name}: ${lines} lines + ${lost} lost`);
      assertEquals(lines + lost, n, `${name}: ${lines} + ${lost} != ${n}\n${o.stderr}`);
      if (name === "starved") assert(lost > 0, "a frozen reader with a 64 KiB buffer loses events");
    }
    const perOpen = (ns: number) => (ns / n).toFixed(0);
    report.push(
      `CPU per open (user + sys, schedstat): ours ${perOpen(cpu.ringbuf)} ns, ` +
        `libbpf-tools ${perOpen(cpu.ref)} ns`,
    );
    console.log(report.join("\n"));
    await assertNoneLoaded();
  },
);

/**
 * -F: waits for "go", changes to argv[1] (a directory under a tmpfs mounted
 * inside a temporary directory: the walk up crosses a mount point), then
 * opens relative names with open(2), openat(2) at AT_FDCWD and openat2(2),
 * one through "..", one relative to a directory fd (shown as given), and an
 * absolute one; prints each name and its result.
 */
const FULL_PATH_WORKLOAD = String.raw`
import ctypes, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
AT_FDCWD = -100
class OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]
sys.stdin.readline()
os.chdir(sys.argv[1])
dfd = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
calls = [("open", AT_FDCWD, "fp-marker-one"), ("openat", AT_FDCWD, "sub/fp-marker-two"),
         ("openat2", AT_FDCWD, "sub/../fp-marker-three"), ("openat", dfd, "fp-marker-dfd"),
         ("openat", AT_FDCWD, "/nonexistent/fp-marker-abs")]
for kind, d, path in calls:
    p = path.encode()
    if kind == "open":
        r = libc.syscall(2, p, os.O_RDONLY, 0)
    elif kind == "openat":
        r = libc.syscall(257, d, p, os.O_RDONLY, 0)
    else:
        how = OpenHow(os.O_RDONLY, 0, 0)
        r = libc.syscall(437, d, p, ctypes.byref(how), ctypes.sizeof(how))
    print(json.dumps({"path": path, "fd": r if r >= 0 else -1}), flush=True)
    if r >= 0: os.close(r)
`;

kernelTest("opensnoop -F: relative paths after the working directory, across a mount", async () => {
  const top = await Deno.makeTempDir({ prefix: "bpftk-opensnoop-F-" });
  const mnt = `${top}/mnt`;
  const cwd = `${mnt}/deep/er`;
  Deno.mkdirSync(mnt);
  const mount = new Deno.Command("mount", { args: ["-t", "tmpfs", "fptest", mnt] });
  assertEquals((await mount.output()).code, 0, "mount tmpfs");
  const runs: Record<string, ToolProcess | ReferenceTool> = {};
  try {
    Deno.mkdirSync(`${cwd}/sub`, { recursive: true });
    Deno.writeTextFileSync(`${cwd}/sub/fp-marker-two`, "x");
    const work = new PausedWorkload(PYTHON, ["-c", FULL_PATH_WORKLOAD, cwd]);
    const P = String(work.pid);
    runs.full = new ToolProcess("opensnoop", ["-F", "-p", P]);
    runs.fullJson = new ToolProcess("opensnoop", ["-F", "--json", "-p", P]);
    runs.plain = new ToolProcess("opensnoop", ["-p", P]);
    runs.ref = new ReferenceTool("/usr/sbin/opensnoop", ["-p", P]);
    for (const name of ["full", "plain", "ref"]) await runs[name].waitForOutput(/PATH/);
    await waitForPrograms("opensnoop_atout", 3);
    const done = await work.run();
    assertEquals(done.code, 0, done.stderr);
    const truth = done.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assertEquals(truth.length, 5);
    const shown = (p: { stdout: string }) =>
      p.stdout.split("\n").filter((l) => l.includes("fp-marker-"));
    await waitFor(
      () =>
        shown(runs.full).length >= 5 && shown(runs.plain).length >= 5 &&
        shown(runs.ref).length >= 3,
      10_000,
      "the workload's opens shown",
    ).catch(() => {});
    const out: Record<string, string> = {};
    for (const [name, r] of Object.entries(runs)) {
      const o = await r.stop();
      assertEquals(o.code, 0, `${name}: ${o.stderr}`);
      out[name] = o.stdout;
    }
    const paths = (stdout: string) =>
      stdout.split("\n").filter((l) => l.includes("fp-marker-")).map((l) => l.split(/ +/).pop());
    // The real cwd, as the kernel resolves it (the temp dir may sit behind a symlink).
    const real = Deno.realPathSync(cwd);
    deepEqual(paths(out.full), [
      `${real}/fp-marker-one`,
      `${real}/sub/fp-marker-two`,
      `${real}/sub/../fp-marker-three`,
      "fp-marker-dfd", // relative to a directory fd: as given
      "/nonexistent/fp-marker-abs",
    ]);
    // FD and ERR as the workload saw them; without -F, and libbpf-tools, the names as given.
    const fds = (stdout: string) =>
      stdout.split("\n").filter((l) => l.includes("fp-marker-")).map((l) =>
        Number(l.split(/ +/)[2])
      );
    deepEqual(fds(out.full), truth.map((t) => t.fd));
    deepEqual(paths(out.plain), truth.map((t) => t.path));
    // Debian's libbpf-tools opensnoop here traces openat(2) only: calls 2, 4 and 5.
    deepEqual(paths(out.ref), [truth[1], truth[3], truth[4]].map((t) => t.path));
    const json = out.fullJson.trim().split("\n").map((l) => JSON.parse(l))
      .filter((e) => e.path.includes("fp-marker-"));
    deepEqual(json.map((e) => e.path), paths(out.full));
  } finally {
    for (const r of Object.values(runs)) r.killTree();
    await new Deno.Command("umount", { args: [mnt] }).output();
    await Deno.remove(top, { recursive: true });
  }
});

/**
 * -c: a C program built here (-O0 -fno-omit-frame-pointer) opens a missing
 * file 3 times from known_open_parent -> known_open_function, whose inline
 * `syscall` instruction makes the open (so the innermost user frame is ours,
 * and the frame pointer walk finds its caller). It stays alive until told,
 * so its mappings can be read when the lines are printed.
 */
const OPENER_C = String.raw`
#include <stdio.h>
#include <sys/syscall.h>
long known_open_function(const char *path) {
  long ret;
  __asm__ volatile ("syscall" : "=a"(ret) : "0"((long)SYS_openat), "D"(-100L), "S"(path), "d"(0L)
                    : "rcx", "r11", "r10", "memory");
  return ret;
}
long known_open_parent(const char *path) { return known_open_function(path); }
int main(void) {
  char line[16];
  if (!fgets(line, sizeof line, stdin)) return 1;
  for (int i = 0; i < 3; i++) printf("%ld\n", known_open_parent("/nonexistent/caller-marker"));
  fflush(stdout);
  while (fgets(line, sizeof line, stdin)) {}
  return 0;
}
`;

kernelTest("opensnoop -c: each open's two calling functions under PATH", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bpftk-opensnoop-c-" });
  const runs: ToolProcess[] = [];
  let opener: Spawned | undefined;
  try {
    Deno.writeTextFileSync(`${dir}/opener.c`, OPENER_C);
    const cc = await new Deno.Command("gcc", {
      args: ["-O0", "-fno-omit-frame-pointer", "-o", `${dir}/opener`, `${dir}/opener.c`],
    }).output();
    assertEquals(cc.code, 0, new TextDecoder().decode(cc.stderr));
    opener = new PausedWorkload(`${dir}/opener`, []);
    const P = String(opener.pid);
    const text = new ToolProcess("opensnoop", ["-c", "-p", P]);
    const json = new ToolProcess("opensnoop", ["-c", "--json", "-p", P]);
    runs.push(text, json);
    await text.waitForOutput(/PATH\/CALLER/);
    await waitForPrograms("opensnoop_atout", 2);
    await opener.write("go\n");
    await opener.waitForOutput(/(-2\n){3}/);
    await text.waitForOutput(/(caller-marker\n.*\n.*\n[^]*){3}/, 10_000).catch(() => {});
    await waitFor(() => json.stdout.split("caller-marker").length > 3, 10_000, "JSON lines")
      .catch(() => {});
    const [t, j] = [await text.stop(), await json.stop()];
    assertEquals(t.code, 0, t.stderr);
    assertEquals(j.code, 0, j.stderr);
    assertEquals(t.stdout.split("\n")[0], "PID    COMM              FD ERR PATH/CALLER");
    const lines = t.stdout.split("\n");
    const at = lines.flatMap((l, i) => l.endsWith(" /nonexistent/caller-marker") ? [i] : []);
    assertEquals(at.length, 3, t.stdout);
    const pathColumn = lines[at[0]].indexOf("/nonexistent");
    for (const i of at) {
      assert(lines[i].startsWith(`${P.padEnd(6)} opener            -1   2 `), lines[i]);
      deepEqual(lines.slice(i + 1, i + 3), [
        " ".repeat(pathColumn) + "known_open_function",
        " ".repeat(pathColumn) + "known_open_parent",
      ]);
    }
    const events = j.stdout.trim().split("\n").map((l) => JSON.parse(l))
      .filter((e) => e.path === "/nonexistent/caller-marker");
    deepEqual(
      events.map((e) => e.callers),
      Array(3).fill(["known_open_function", "known_open_parent"]),
    );
  } finally {
    for (const r of runs) r.killTree();
    await opener?.closeStdin().catch(() => {});
    await opener?.wait().catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});

kernelTest("opensnoop: Ctrl-C in the middle of an open flood exits promptly", async () => {
  const storm = new PausedWorkload(PYTHON, ["-c", STORM, String(50_000_000)]);
  const tool = new ToolProcess("opensnoop", ["-p", String(storm.pid)]);
  try {
    await tool.waitForOutput(/PID +COMM/);
    const running = storm.run();
    await waitFor(() => tool.stdout.length > 1 << 20, 15000, "a megabyte of flood output");
    const t0 = performance.now();
    tool.kill("SIGINT");
    const { code } = await tool.finish();
    const ms = performance.now() - t0;
    assertEquals(code, 0);
    assert(ms < 2500, `exited ${ms.toFixed(0)} ms after SIGINT`);
    storm.killTree();
    await running;
  } finally {
    storm.killTree();
    tool.killTree();
  }
  await assertNoneLoaded();
});

kernelTest("opensnoop -d 1: stops by itself after the duration", async () => {
  const t0 = performance.now();
  const { code, stdout } = await runToolOnce("opensnoop", ["-d", "1", "-p", "1"]);
  const ms = performance.now() - t0;
  assertEquals(code, 0);
  assertEquals(stdout, "PID    COMM              FD ERR PATH\n");
  assert(ms < 6000, `took ${ms} ms`);
  await assertNoneLoaded();
});

for (
  const [args, pattern] of [
    [["-p", "x"], /^opensnoop: invalid PID 'x': not an integer/],
    [["-t", "0"], /^opensnoop: invalid TID '0': must be at least 1/],
    [["-u", "-1"], /^opensnoop: invalid UID '-1': negative/],
    [["-d", "0"], /^opensnoop: invalid duration '0': must be at least 1/],
    [["-d", "-1"], /^opensnoop: invalid duration '-1': negative/],
    [["-n", ""], /^opensnoop: invalid -n: empty/],
    [["-f", "O_BOGUS"], /^opensnoop: unknown open flag 'O_BOGUS'/],
    [["-z"], /^opensnoop: unknown option '-z'/],
    [["extra"], /^opensnoop: unrecognized positional argument: 'extra'/],
  ] as [string[], RegExp][]
) {
  Deno.test(`opensnoop ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("opensnoop", args);
    assertEquals(code, 2, stderr);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(pattern.test(stderr), stderr);
  });
}

Deno.test("opensnoop --help: bcc-style USAGE and EXAMPLES under 80 columns", async () => {
  const { code, stdout } = await runToolOnce("opensnoop", ["--help"]);
  assertEquals(code, 0);
  assert(/^USAGE: opensnoop /m.test(stdout) && /^EXAMPLES:/m.test(stdout), stdout);
  assert(stdout.split("\n").every((l) => l.length < 80), "help fits in 80 columns");
});
