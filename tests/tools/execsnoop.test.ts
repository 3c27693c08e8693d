/**
 * execsnoop against workloads whose truth is known: a bash script that runs
 * commands with known arguments (spaces, quotes, an escape character,
 * backslashes, 36 arguments, a file that does not exist) and prints each
 * child's PID; an exec storm; execs inside and outside a cgroup (-c). Several execsnoop runs with different flags, and libbpf-tools
 * execsnoop, watch the same workload at the same time.
 */
import { deepEqual, equal as assertEquals, ok as assert } from "node:assert/strict";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { cgroupV2Root } from "../../lib/cli/flags.ts";
import {
  cpuNs,
  lostInStderr,
  PausedWorkload,
  ReferenceTool,
  waitForPrograms,
} from "../support/event_tools.ts";
import type { Spawned } from "../support/process.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";

const MANY = Array.from({ length: 35 }, (_, i) => `a${i + 1}`);

/** The commands the workload runs, in order, with what execsnoop must show for each. */
const COMMANDS: { argv: string[]; comm: string; ret: number }[] = [
  ...[1, 2, 3, 4, 5].map((i) => ({
    argv: ["/bin/true", `marker-${i}`, "arg with spaces", 'say "hi"'],
    comm: "true",
    ret: 0,
  })),
  { argv: ["/bin/true", "marker-many", ...MANY], comm: "true", ret: 0 },
  // exec fails (ENOENT): the forked bash child keeps its comm
  { argv: ["/nonexistent/marker-fail", "x", "y"], comm: "bash", ret: -2 },
  { argv: ["/bin/true", "marker-esc", "\x1b[31mred"], comm: "true", ret: 0 },
  // A backslash is printed once, as libbpf-tools prints it; with ESC beside it, ESC is escaped.
  { argv: ["/bin/true", "marker-bs", "C:\\dir\\x", "\\", "\\\x1b"], comm: "true", ret: 0 },
];

function bashQuote(s: string): string {
  return `$'${
    [...s].map((ch) =>
      /[A-Za-z0-9 _./-]/.test(ch) ? ch : `\\x${ch.charCodeAt(0).toString(16).padStart(2, "0")}`
    ).join("")
  }'`;
}

/** bash: wait for "go", then run each command in the background, print its PID, wait for it. */
const SCRIPT = [
  "read go",
  'run() { "$@" & echo "$!"; wait "$!"; }',
  ...COMMANDS.map((c) => `run ${c.argv.map(bashQuote).join(" ")}`),
].join("\n");

interface Truth {
  argv: string[];
  comm: string;
  ret: number;
  pid: number;
  ppid: number;
}

/** The execsnoop text line for an exec (libbpf-tools' format, control characters escaped, `\\` not). */
function expectedLine(t: Truth, maxArgs: number, quote = false, escape = true): string {
  const shown = t.argv.slice(0, maxArgs).map((a) => escape ? a.replaceAll("\x1b", "\\x1b") : a);
  const args = quote
    ? shown.map((a) => `"${a.replaceAll('"', '\\"')}" `).join("")
    : shown.map((a) => `${a} `).join("");
  const more = t.argv.length > maxArgs ? " ..." : "";
  return `${t.comm.padEnd(16)} ${String(t.pid).padEnd(6)} ${String(t.ppid).padEnd(6)} ` +
    `${String(t.ret).padStart(3)} ${args}${more}`;
}

/** Lines of a run that belong to the workload (its PID in the PPID column). */
function linesOf(stdout: string, ppid: number): string[] {
  return stdout.split("\n").filter((l) => l.includes(`marker-`) && l.includes(` ${ppid} `));
}

async function assertNoneLoaded(): Promise<void> {
  await waitFor(
    async () => !(await loadedProgramNames()).some((n) => n.startsWith("execsnoop_")),
    5000,
    "execsnoop programs to unload",
  );
}

kernelTest("execsnoop: known execs appear once each, as libbpf-tools shows them", async (t) => {
  const work = new PausedWorkload("bash", ["-c", SCRIPT]);
  const W = String(work.pid);
  const runs = {
    all: new ToolProcess("execsnoop", ["-x", "--max-args", "40", "-P", W]),
    defaults: new ToolProcess("execsnoop", ["-P", W]),
    json: new ToolProcess("execsnoop", ["--json", "-x", "--max-args", "40", "-P", W]),
    quoted: new ToolProcess("execsnoop", ["-q", "-P", W]),
    filtered: new ToolProcess("execsnoop", ["-n", "tru", "-l", "marker-3", "-P", W]),
    otherUser: new ToolProcess("execsnoop", ["-u", "65534", "-x", "-P", W]),
    columns: new ToolProcess("execsnoop", ["-T", "-t", "-U", "-P", W]),
  };
  const ref = new ReferenceTool("/usr/sbin/execsnoop", ["-x", "--max-args", "40"]);
  let truth: Truth[] = [];
  const out: Record<string, { code: number; stdout: string; stderr: string }> = {};
  try {
    for (const [name, p] of Object.entries(runs)) {
      if (name !== "json") await p.waitForOutput(/PCOMM/);
    }
    await waitForPrograms("execsnoop_atout", Object.keys(runs).length);
    await ref.waitForOutput(/PCOMM/);
    const done = await work.run();
    const pids = done.stdout.trim().split("\n").map(Number);
    assertEquals(pids.length, COMMANDS.length, done.stdout);
    truth = COMMANDS.map((c, i) => ({ ...c, pid: pids[i], ppid: work.pid }));
    // Stop once the workload's execs are all shown (not after a pause).
    await waitFor(
      () =>
        linesOf(runs.all.stdout, work.pid).length >= truth.length &&
        linesOf(ref.stdout, work.pid).length >= truth.length,
      15_000,
      `${truth.length} execs shown`,
    ).catch(() => {}); // the steps below say what is missing
  } finally {
    for (const [name, p] of Object.entries(runs)) out[name] = await p.stop();
    out.ref = await ref.stop();
  }
  for (const [name, o] of Object.entries(out)) assertEquals(o.code, 0, `${name}: ${o.stderr}`);
  const W_ = work.pid;

  await t.step("-x --max-args 40: every exec once, with PID, PPID, RET and all args", () => {
    deepEqual(linesOf(out.all.stdout, W_), truth.map((x) => expectedLine(x, 40)));
    assertEquals(out.all.stdout.split("\n")[0], "PCOMM            PID    PPID   RET ARGS");
  });

  await t.step("libbpf-tools execsnoop printed the same lines (raw bytes)", () => {
    deepEqual(linesOf(out.ref.stdout, W_), truth.map((x) => expectedLine(x, 40, false, false)));
  });

  await t.step("plain ASCII arguments: each line byte for byte libbpf-tools' line", () => {
    // Records without bytes to escape take the direct path (record bytes to
    // output); they must be what the C tool writes, byte for byte.
    // Plain: libbpf-tools' line is printable ASCII (backslashes too); ours for the same PID.
    const plain = (l: string) => /^[\x20-\x7e]*$/.test(l);
    const theirs = linesOf(out.ref.stdout, W_).filter(plain);
    const pidOf = (l: string) => l.split(/ +/)[1];
    const pids = new Set(theirs.map(pidOf));
    const ours = linesOf(out.all.stdout, W_).filter((l) => pids.has(pidOf(l)));
    assert(ours.length >= truth.length - 3, `${ours.length} plain lines`);
    deepEqual(ours, theirs);
    const bytes = (ls: string[]) => new TextEncoder().encode(ls.join("\n"));
    assert(bytes(ours).every((b, i) => b === bytes(theirs)[i]), "the same bytes");
  });

  await t.step("a backslash once, as libbpf-tools prints it (ESC escaped beside it)", () => {
    const bs = (stdout: string) => linesOf(stdout, W_).filter((l) => l.includes("marker-bs"));
    const [ours] = bs(out.all.stdout), [theirs] = bs(out.ref.stdout);
    assert(ours.endsWith(" /bin/true marker-bs C:\\dir\\x \\ \\\\x1b "), ours);
    assertEquals(ours, theirs.replaceAll("\x1b", "\\x1b"));
  });

  await t.step("defaults: no failed exec, 20 arguments then ' ...'", () => {
    const want = truth.filter((x) => x.ret === 0).map((x) => expectedLine(x, 20));
    deepEqual(linesOf(out.defaults.stdout, W_), want);
    assert(want.some((l) => l.endsWith(" a18  ...")), "the 37-argument exec is cut at 20");
  });

  await t.step("--json: the same numbers, exact bytes", () => {
    const events = out.json.stdout.trim().split("\n").map((l) => JSON.parse(l));
    deepEqual(
      events.map((e) => [e.comm, e.pid, e.ppid, e.ret, e.uid, e.args, e.truncated]),
      truth.map((x) => [x.comm, x.pid, x.ppid, x.ret, 0, x.argv, false]),
    );
  });

  await t.step("-q quotes each argument", () => {
    const want = truth.filter((x) => x.ret === 0).map((x) => expectedLine(x, 20, true));
    deepEqual(linesOf(out.quoted.stdout, W_), want);
  });

  await t.step("-n NAME and -l LINE filter in user space", () => {
    deepEqual(linesOf(out.filtered.stdout, W_), [expectedLine(truth[2], 20)]);
  });

  await t.step("-u 65534: none of root's execs", () => {
    assertEquals(out.otherUser.stdout, "PCOMM            PID    PPID   RET ARGS\n");
  });

  await t.step("-T -t -U: TIME, TIME(s) and UID columns", () => {
    const lines = out.columns.stdout.split("\n");
    assertEquals(lines[0], "TIME     TIME(s)  UID    PCOMM            PID    PPID   RET ARGS");
    const mine = lines.filter((l) => l.includes("marker-1 "));
    assertEquals(mine.length, 1, out.columns.stdout);
    const rest = expectedLine(truth[0], 20);
    assert(new RegExp(`^\\d\\d:\\d\\d:\\d\\d \\d+\\.\\d{3} +0      `).test(mine[0]), mine[0]);
    assert(mine[0].endsWith(rest), mine[0]);
  });

  await assertNoneLoaded();
});

/** bash: wait for "go", join cgroup `cg` (when given), exec /bin/true `marker` `n` times. */
function cgroupScript(marker: string, n: number, cg?: string): string {
  return [
    "read go",
    ...(cg ? [`echo $$ > '${cg}/cgroup.procs'`] : []),
    `for i in $(seq ${n}); do /bin/true ${marker} $i; done`,
  ].join("\n");
}

kernelTest(
  "execsnoop -c CG: execs inside the cgroup, none outside or from an empty one, as libbpf-tools -c",
  async () => {
    const root = cgroupV2Root();
    const inside = `${root}/bpftk-execsnoop-in`, empty = `${root}/bpftk-execsnoop-empty`;
    for (const dir of [inside, empty]) Deno.mkdirSync(dir, { recursive: true });
    const runs: Record<string, ToolProcess | ReferenceTool> = {};
    const out: Record<string, { code: number; stdout: string; stderr: string }> = {};
    try {
      runs.inCg = new ToolProcess("execsnoop", ["-c", inside]);
      runs.emptyCg = new ToolProcess("execsnoop", ["-c", empty]);
      runs.all = new ToolProcess("execsnoop", []);
      runs.ref = new ReferenceTool("/usr/sbin/execsnoop", ["-c", inside]);
      for (const p of Object.values(runs)) await p.waitForOutput(/PCOMM/);
      await waitForPrograms("execsnoop_atout", 3);
      const inWork = new PausedWorkload("bash", ["-c", cgroupScript("cg-marker-in", 6, inside)]);
      const outWork = new PausedWorkload("bash", ["-c", cgroupScript("cg-marker-out", 4)]);
      const done = await Promise.all([inWork.run(), outWork.run()]);
      for (const d of done) assertEquals(d.code, 0, d.stderr);
      const count = (p: { stdout: string }, m: string) =>
        p.stdout.split("\n").filter((l) => l.includes(m)).length;
      await waitFor(
        () =>
          count(runs.all, "cg-marker-") >= 10 && count(runs.inCg, "cg-marker-in") >= 6 &&
          count(runs.ref, "cg-marker-in") >= 6,
        15_000,
        "the workloads' execs shown",
      ).catch(() => {}); // the asserts below say what is missing
    } finally {
      for (const [name, p] of Object.entries(runs)) out[name] = await p.stop();
      for (const dir of [inside, empty]) await Deno.remove(dir).catch(() => {});
    }
    for (const [name, o] of Object.entries(out)) assertEquals(o.code, 0, `${name}: ${o.stderr}`);
    const lines = (o: { stdout: string }, m: string) =>
      o.stdout.split("\n").filter((l) => new RegExp(`/bin/true ${m}[a-z]* \\d`).test(l));
    const args = (ls: string[]) => ls.map((l) => l.replace(/^.*? 0 \/bin\/true /, ""));
    const want = [1, 2, 3, 4, 5, 6].map((i) => `cg-marker-in ${i} `);
    // Without -c both workloads show: the filter, not the workload, keeps them out.
    assertEquals(lines(out.all, "cg-marker-in").length, 6, out.all.stdout);
    assertEquals(lines(out.all, "cg-marker-out").length, 4, out.all.stdout);
    deepEqual(args(lines(out.inCg, "cg-marker-")), want, out.inCg.stdout);
    deepEqual(lines(out.emptyCg, "cg-marker-"), [], out.emptyCg.stdout);
    // libbpf-tools execsnoop -c on the same cgroup: the same lines, byte for byte.
    deepEqual(lines(out.ref, "cg-marker-"), lines(out.inCg, "cg-marker-"));
    await assertNoneLoaded();
  },
);

/**
 * perl: wait for "go", then for `secs` seconds fork children that exec
 * /bin/true (at most 4 at a time); print how many were started and how many
 * exec'ed successfully (exit status 0).
 */
const STORM = String.raw`
use Time::HiRes qw(time);
$| = 1;
my ($secs) = @ARGV;
<STDIN>;
my ($started, $ok, %kids) = (0, 0);
my $end = time + $secs;
while (time < $end) {
  while (keys %kids < 4) {
    my $p = fork;
    if (!$p) { exec "/bin/true", "storm-marker", $started; exit 127; }
    $kids{$p} = 1;
    $started++;
  }
  my $p = waitpid(-1, 0);
  delete $kids{$p};
  $ok++ if $? == 0;
}
while (keys %kids) { my $p = waitpid(-1, 0); delete $kids{$p}; $ok++ if $? == 0; }
print "$started $ok\n";
`;

kernelTest(
  "execsnoop under an exec storm: lines + reported lost == execs, as libbpf-tools",
  async () => {
    const secs = 4;
    const storm = new PausedWorkload("perl", ["-e", STORM, String(secs)]);
    const S = String(storm.pid);
    const runs = {
      ringbuf: new ToolProcess("execsnoop", ["-P", S]),
      perf: new ToolProcess("execsnoop", ["-P", S], { env: { BPFTK_EVENT_BUFFER: "perf" } }),
      // a 16 KiB ring buffer, and the reader frozen for a second: loss for sure
      starved: new ToolProcess("execsnoop", ["-P", S], { env: { BPFTK_RING_BYTES: "16384" } }),
    };
    const ref = new ReferenceTool("/usr/sbin/execsnoop", []);
    const out: Record<string, { code: number; stdout: string; stderr: string }> = {};
    let execs = 0;
    const cpu: Record<string, number> = {};
    try {
      for (const p of Object.values(runs)) await p.waitForOutput(/PCOMM/);
      await ref.waitForOutput(/PCOMM/);
      const before = { ringbuf: cpuNs(runs.ringbuf.pid), ref: cpuNs(ref.pid) };
      const running = storm.run();
      await new Promise((r) => setTimeout(r, 1000));
      runs.starved.kill("SIGSTOP");
      await new Promise((r) => setTimeout(r, 1500));
      runs.starved.kill("SIGCONT");
      const done = await running;
      const [started, ok] = done.stdout.trim().split(" ").map(Number);
      assert(ok > 0 && ok <= started, done.stdout);
      execs = ok;
      // The unstarved readers keep up: wait for all the workload's execs in them.
      const shown = (p: Spawned) =>
        p.stdout.split("\n").filter((l) => l.includes("storm-marker") && l.includes(` ${S} `))
          .length;
      await waitFor(
        () => shown(runs.ringbuf) >= execs && shown(runs.perf) >= execs,
        20_000,
        `${execs} execs shown`,
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
    const report: string[] = [`exec storm: ${execs} execs in ${secs} s`];
    for (const [name, o] of Object.entries(out)) {
      assertEquals(o.code, 0, `${name}: ${o.stderr}`);
      const lines = o.stdout.split("\n").filter((l) =>
        l.includes("storm-marker") && l.includes(` ${storm.pid} `)
      ).length;
      const lost = lostInStderr(o.stderr);
      report.push(`${name}: ${lines} lines + ${lost} lost`);
      if (name === "ref") {
        // libbpf-tools traces every process, so its lost count may include others' execs.
        assert(lines <= execs && lines + lost >= execs, `libbpf-tools: ${lines} + ${lost}`);
      } else {
        assertEquals(lines + lost, execs, `${name}: ${lines} + ${lost} != ${execs}\n${o.stderr}`);
      }
      if (name === "starved") {
        assert(lost > 0, "a frozen reader with a 16 KiB buffer loses events");
      }
      if (name === "ringbuf" || name === "perf") {
        assertEquals(lost, 0, `${name} kept up`);
      }
    }
    const perExec = (ns: number) => (ns / 1000 / execs).toFixed(2);
    report.push(
      `CPU per exec (user + sys, schedstat): ours ${perExec(cpu.ringbuf)} us, ` +
        `libbpf-tools ${perExec(cpu.ref)} us`,
    );
    console.log(report.join("\n"));
    await assertNoneLoaded();
  },
);

for (
  const [args, pattern] of [
    [["--max-args", "0"], /^execsnoop: invalid MAX_ARGS '0': must be at least 1/],
    [["--max-args", "61"], /^execsnoop: invalid MAX_ARGS '61': too large \(at most 60\)/],
    [["-P", "abc"], /^execsnoop: invalid PPID 'abc': not an integer/],
    [["-u", "-5"], /^execsnoop: invalid UID '-5': negative/],
    [["-u", "no-such-user-here"], /^execsnoop: invalid UID or user 'no-such-user-here'/],
    [["-z"], /^execsnoop: unknown option '-z'/],
    [["-c", "/nonexistent/cg"], /^execsnoop: -c \/nonexistent\/cg: no such cgroup/],
    [["-c", "/tmp"], /^execsnoop: -c \/tmp: not a cgroup v2 directory/],
    [["extra"], /^execsnoop: unrecognized positional argument: 'extra'/],
  ] as [string[], RegExp][]
) {
  Deno.test(`execsnoop ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("execsnoop", args);
    assertEquals(code, 2);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(pattern.test(stderr), stderr);
  });
}

Deno.test("execsnoop --help: bcc-style USAGE and EXAMPLES under 80 columns", async () => {
  const { code, stdout } = await runToolOnce("execsnoop", ["--help"]);
  assertEquals(code, 0);
  assert(/^USAGE: execsnoop /m.test(stdout) && /^EXAMPLES:/m.test(stdout), stdout);
  assert(stdout.split("\n").every((l) => l.length < 80), "help fits in 80 columns");
});

kernelTest("execsnoop: SIGTERM exits 0 and unloads everything", async () => {
  const p = new ToolProcess("execsnoop", []);
  await p.waitForOutput(/PCOMM/);
  assert((await loadedProgramNames()).includes("execsnoop_exit"));
  assertEquals((await p.stop("SIGTERM")).code, 0);
  await assertNoneLoaded();
});
