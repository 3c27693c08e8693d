/**
 * profile against workloads whose stacks are known: a C program built here
 * with frame pointers spinning in hot_leaf_function under
 * known_parent_function on two threads (two busy CPUs), and a Deno process
 * with --perf-basic-prof spinning in a named JavaScript function.
 *
 * The truth for the sample count is the workload's own CPU time
 * (CLOCK_PROCESS_CPUTIME_ID): at F Hz, a thread running for t seconds is
 * sampled about F x t times. On an idle machine t = seconds x busy CPUs.
 */
import { equal as assertEquals, match as assertMatch, ok as assert } from "node:assert/strict";
import { formatFoldedLine, parseFolded } from "../../lib/format/folded.ts";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { buildWorkloads, Workload } from "../support/stack_workloads.ts";
import { REPO_ROOT, runToolOnce, ToolProcess } from "../support/tool_process.ts";
import { run, Spawned } from "../support/process.ts";

const FREQ = 99;
const SPIN_S = 2;
const THREADS = 2;

async function ourPrograms(): Promise<number> {
  return (await loadedProgramNames()).filter((n) => n === "profile").length;
}

/** Waits until profile's program is loaded (folded output prints no header). */
async function attached(before: number, n = 1): Promise<void> {
  await waitFor(async () => (await ourPrograms()) >= before + n, 15000, "profile to attach");
  await new Promise((r) => setTimeout(r, 100)); // the perf events attach right after the load
}

/** Kills a tool that may already have exited (a failed assertion left it running). */
function killQuietly(tool?: ToolProcess): void {
  try {
    tool?.kill("SIGKILL");
  } catch {
    // already gone
  }
}

/** Folded lines must be exactly `frame;...;frame count`, one per unique stack. */
function assertFolded(text: string): ReturnType<typeof parseFolded> {
  const lines = text.split("\n").filter((l) => l !== "");
  const stacks = parseFolded(text);
  assertEquals(stacks.length, lines.length, "every line parses");
  const seen = new Set<string>();
  for (const [i, s] of stacks.entries()) {
    assertMatch(lines[i], /^[^ ;][^\n]* [1-9]\d*$/);
    assert(s.frames.every((f) => f !== ""), `empty frame in: ${lines[i]}`);
    assertEquals(formatFoldedLine(s.frames, s.count), lines[i], "round trip");
    const key = s.frames.join(";");
    assert(!seen.has(key), `stack printed twice: ${key}`);
    seen.add(key);
  }
  return stacks;
}

/**
 * How far a sample count may be from F x CPU seconds: 12%, or 3 standard
 * deviations of a count that size where that is more (few samples: on a busy
 * machine the process runs in short slices, and whether a slice holds a tick
 * is a matter of chance).
 */
function tolerance(expected: number): number {
  return Math.max(0.12 * expected, 3 * Math.sqrt(expected));
}

kernelTest(
  "profile -f: the known stack holds the process's samples, F x CPU seconds; named after exit",
  async () => {
    const w = await buildWorkloads();
    const busy = new Workload(w.busy, [String(SPIN_S), String(THREADS)]);
    let tool: ToolProcess | undefined, cut: ToolProcess | undefined;
    try {
      const pid = Number(await busy.value("pid"));
      const before = await ourPrograms();
      tool = new ToolProcess("profile", ["-f", "-F", String(FREQ), "-p", String(pid)]);
      // --perf-max-stack-depth 2, -U: the innermost two user frames of the same samples.
      cut = new ToolProcess("profile", [
        ...["-f", "-U", "-F", String(FREQ), "-p", `${pid},1`, "--perf-max-stack-depth", "2"],
      ]);
      await attached(before, 2);
      await busy.send("go");
      const cpu = Number(await busy.value("cpu"));
      // The workload exits before the report: its stacks are still named (the
      // tool snapshots the maps of the processes it samples while sampling).
      await busy.close();
      tool.kill("SIGINT");
      cut.kill("SIGINT");
      const { code, stdout, stderr } = await tool.finish();
      assertEquals(code, 0, stderr);
      const short = await cut.finish();
      assertEquals(short.code, 0, short.stderr);

      const stacks = assertFolded(stdout);
      const mine = stacks.filter((s) => s.frames[0] === "profbusy");
      const total = mine.reduce((n, s) => n + s.count, 0);
      // In the known stack: its user part ends in hot_leaf_function (a sample taken while
      // the kernel ran for it, a tick or a preemption on a busy machine, adds kernel frames).
      const known = mine.filter((s) =>
        s.frames.join(";").includes("known_parent_function;hot_leaf_function")
      ).reduce((n, s) => n + s.count, 0);
      // The main thread's stack, complete down to main.
      const main = mine.find((s) =>
        s.frames.join(";").endsWith("main;known_parent_function;hot_leaf_function")
      );
      assert(main, `main;known_parent_function;hot_leaf_function not in:\n${stdout}`);
      assert(known / total >= 0.9, `hot_leaf_function has ${known} of ${total} samples`);

      const expected = FREQ * cpu;
      const idle = FREQ * SPIN_S * THREADS;
      console.log(
        `profile: ${total} samples; truth F x CPU time = ${expected.toFixed(0)} ` +
          `(F x ${SPIN_S} s x ${THREADS} CPUs = ${idle} on an idle machine)`,
      );
      assert(
        Math.abs(total - expected) <= tolerance(expected),
        `${total} samples, expected ${expected.toFixed(0)} +-${tolerance(expected).toFixed(0)}`,
      );

      // --perf-max-stack-depth 2: no stack longer than two frames; the spin's is
      // exactly known_parent_function;hot_leaf_function, with the samples of the spin.
      const cutMine = assertFolded(short.stdout).filter((s) => s.frames[0] === "profbusy");
      for (const s of cutMine) assert(s.frames.length <= 3, s.frames.join(";"));
      const cutTotal = cutMine.reduce((n, s) => n + s.count, 0);
      const cutKnown = cutMine.find((s) =>
        s.frames.join(";") === "profbusy;known_parent_function;hot_leaf_function"
      );
      assert(cutKnown, short.stdout);
      assert(cutKnown.count / cutTotal >= 0.9, `${cutKnown.count} of ${cutTotal} samples`);
      assert(Math.abs(cutTotal - expected) <= tolerance(expected), `${cutTotal} samples cut`);
    } finally {
      killQuietly(tool);
      killQuietly(cut);
      await busy.close();
      await Deno.remove(w.dir, { recursive: true });
    }
  },
);

kernelTest("profile -C, -L, -U, -K: CPU, thread and stack filters", async () => {
  // Two spinning threads pinned to CPU 1; five profilers watch them at once.
  const w = await buildWorkloads();
  const busy = new Workload(w.busy, ["1.5", "2"], { cpu: 1 });
  const tools: ToolProcess[] = [];
  try {
    const pid = String(Number(await busy.value("pid")));
    const before = await ourPrograms();
    const variants = [
      ["-f", "-C", "0", "-p", pid],
      ["-f", "-C", "1", "-p", pid],
      ["-f", "-L", pid],
      ["-f", "-U", "-p", pid],
      ["-f", "-K", "-a", "-p", pid],
    ];
    for (const args of variants) tools.push(new ToolProcess("profile", ["-F", "99", ...args]));
    await waitFor(
      async () => (await ourPrograms()) === before + tools.length,
      20000,
      "the profilers to attach",
    );
    await new Promise((r) => setTimeout(r, 100));
    await busy.send("go");
    const mainCpu = Number(await busy.value("main_cpu"));
    const cpu = Number(await busy.value("cpu"));
    for (const t of tools) t.kill("SIGINT");
    const [cpu0, cpu1, mainThread, user, kernel] = await Promise.all(tools.map((t) => t.finish()));
    const samples = (text: string) => parseFolded(text).reduce((n, s) => n + s.count, 0);

    assertEquals(samples(cpu0.stdout), 0, `nothing of it on CPU 0: ${cpu0.stdout}`);
    const all = samples(cpu1.stdout);
    // All of its CPU time is on CPU 1: about 99 x CPU seconds samples.
    assert(Math.abs(all - 99 * cpu) <= tolerance(99 * cpu), `CPU 1: ${all} samples, ${cpu} s`);
    // -L: the main thread's samples, F x its own CPU time (it measured it).
    const main = samples(mainThread.stdout);
    assert(
      Math.abs(main - 99 * mainCpu) <= tolerance(99 * mainCpu),
      `main thread ${main} of ${all} samples, ${mainCpu} of ${cpu} s`,
    );
    // -U: user frames only, ending in our functions; -K -a: only annotated kernel frames.
    for (const s of parseFolded(user.stdout)) {
      assert(!s.frames.some((f) => f.endsWith("_[k]")), s.frames.join(";"));
    }
    assert(parseFolded(user.stdout).some((s) => s.frames.at(-1) === "hot_leaf_function"));
    for (const s of parseFolded(kernel.stdout)) {
      assertEquals(s.frames[0], "profbusy");
      assert(s.frames.slice(1).every((f) => f.endsWith("_[k]")), s.frames.join(";"));
    }
  } finally {
    for (const t of tools) killQuietly(t);
    await busy.close();
    await Deno.remove(w.dir, { recursive: true });
  }
});

kernelTest("profile: a Deno process with --perf-basic-prof shows its JS function", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bpftk-js-" });
  const script = `${dir}/spin.js`;
  await Deno.writeTextFile(
    script,
    `function spinNamedFunction(ms) {
  const end = Date.now() + ms;
  let x = 0;
  while (Date.now() < end) for (let i = 0; i < 1e5; i++) x += Math.sqrt(x + i);
  return x;
}
console.log("pid", Deno.pid);
for (;;) spinNamedFunction(100);
`,
  );
  const js = new Spawned("deno", ["run", "--v8-flags=--perf-basic-prof", script]);
  let pid = 0;
  try {
    await js.waitForOutput(/pid \d+/);
    pid = Number(js.stdout.match(/pid (\d+)/)?.[1]);
    assert(pid > 0);
    await new Promise((r) => setTimeout(r, 500)); // let V8 optimize it
    const { code, stdout, stderr } = await runToolOnce("profile", ["-f", "-p", String(pid), "1"]);
    assertEquals(code, 0, stderr);
    const stacks = assertFolded(stdout);
    const spinning = stacks.filter((s) => s.frames.some((f) => /spinNamedFunction/.test(f)));
    const total = stacks.reduce((n, s) => n + s.count, 0);
    const inJs = spinning.reduce((n, s) => n + s.count, 0);
    assert(inJs >= total / 2, `spinNamedFunction in ${inJs} of ${total} samples:\n${stdout}`);
    assertMatch(
      spinning[0].frames.find((f) => /spinNamedFunction/.test(f))!,
      /file:\/\/.*spin\.js/,
    );
  } finally {
    js.killTree();
    await js.wait().catch(() => {});
    if (pid) await Deno.remove(`/tmp/perf-${pid}.map`).catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});

kernelTest("profile: default output is bcc's, with -a and -d", async () => {
  const w = await buildWorkloads();
  const busy = new Workload(w.busy, ["1.5", "1"]);
  try {
    const pid = Number(await busy.value("pid"));
    const tool = new ToolProcess("profile", ["-a", "-d", "-p", String(pid), "-F", "49"]);
    await tool.waitForOutput(/Sampling/);
    await busy.send("go");
    await busy.value("cpu");
    tool.kill("SIGINT");
    const { code, stdout, stderr } = await tool.finish();
    assertEquals(code, 0, stderr);
    const lines = stdout.split("\n");
    assertEquals(
      lines[0],
      `Sampling at 49 Hertz of PID ${pid} by user + kernel stack... Hit Ctrl-C to end.`,
    );
    assertEquals(lines[1], "");
    // The block of the hot stack: user frames innermost first, then "-  comm (pid)", the count.
    const at = lines.indexOf("    hot_leaf_function");
    assert(at > 0, stdout);
    assertEquals(lines[at + 1], "    known_parent_function");
    assertEquals(lines[at + 2], "    main");
    const end = lines.indexOf(`    -                profbusy (${pid})`, at);
    assert(end > at, stdout);
    assertMatch(lines[end + 1], /^ {8}\d+$/);
    assertEquals(lines[end + 2], "");
    // Kernel frames (when a sample caught a tick in the kernel) carry _[k] and sit above "--".
    for (const [i, l] of lines.entries()) {
      if (l === "    --") assertMatch(lines[i - 1], /_\[k\]$/);
    }
  } finally {
    await busy.close();
    await Deno.remove(w.dir, { recursive: true });
  }
});

kernelTest("profile --stack-storage-size 1: lost stacks are counted and reported", async () => {
  // One stack fits; the spinning loop's user stacks differ by their leaf address.
  const w = await buildWorkloads();
  const busy = new Workload(w.busy, ["1", "1"]);
  try {
    const pid = String(Number(await busy.value("pid")));
    const tool = new ToolProcess("profile", [
      "-p",
      pid,
      "-F",
      "499",
      "--stack-storage-size",
      "1",
    ]);
    await tool.waitForOutput(/Sampling/);
    await busy.send("go");
    const cpu = Number(await busy.value("cpu"));
    tool.kill("SIGINT");
    const { code, stdout, stderr } = await tool.finish();
    assertEquals(code, 0, stderr);
    assertMatch(
      stderr,
      /^WARNING: \d+ stack traces could not be displayed\. Consider increasing --stack-storage-size\.$/m,
    );
    // Many of its 499 x CPU seconds samples (the workload's own count) found no room: the
    // one slot holds one stack, and samples repeat a stack often enough to keep some.
    const lost = Number(stderr.match(/WARNING: (\d+)/)![1]);
    assert(lost >= 0.2 * 499 * cpu, `${lost} lost of ~${(499 * cpu).toFixed(0)}: ${stderr}`);
    assertMatch(stdout, /\n {4}\[Missed User Stack\]\n {4}- {16}profbusy/);
  } finally {
    await busy.close();
    await Deno.remove(w.dir, { recursive: true });
  }
});

kernelTest("profile: SIGTERM and a closed pipe unload everything", async () => {
  assertEquals(await ourPrograms(), 0, "profile programs loaded before the test");
  const t = new ToolProcess("profile", ["-I", "-F", "99"]);
  await t.waitForOutput(/Sampling at 99 Hertz of all threads/);
  assertEquals(await ourPrograms(), 1);
  await new Promise((r) => setTimeout(r, 300)); // idle samples, at least
  t.kill("SIGTERM");
  const { code, stdout } = await t.finish();
  assertEquals(code, 0);
  assertMatch(stdout, / {4}- {16}\S.* \(\d+\)\n {8}\d+\n/);
  const out = await run("bash", [
    "-c",
    `deno run -A ${REPO_ROOT}tools/profile.ts -f 1 | head -c 1 >/dev/null`,
  ]);
  assertEquals(out.stderr, "");
  await waitFor(async () => (await ourPrograms()) === 0, 3000, "profile to unload");
});

for (
  const [args, pattern] of [
    [["-p", "1", "-L", "2"], /^profile: -p and -L cannot be used together/],
    [["-U", "-K"], /^profile: -U and -K cannot be used together/],
    [["-F", "99", "-c", "1000"], /^profile: -F and -c cannot be used together/],
    [["-F", "0"], /^profile: invalid frequency '0': must be at least 1/],
    [
      ["-F", "1000000000"],
      /^profile: invalid frequency '1000000000': above kernel\.perf_event_max/,
    ],
    [["-C", "x"], /^profile: invalid CPU 'x': not an integer/],
    [["--stack-storage-size", "999999999"], /^profile: invalid stack storage size .*too large/],
    [["1", "2"], /^profile: unrecognized positional argument: '2'/],
    [["--perf-max-stack-depth", "0"], /^profile: invalid stack depth '0': must be at least 1/],
    [["--perf-max-stack-depth", "128"], /^profile: invalid stack depth '128': too large/],
  ] as [string[], RegExp][]
) {
  Deno.test(`profile ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("profile", args);
    assertEquals(code, 2);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assertMatch(stderr, pattern);
  });
}
