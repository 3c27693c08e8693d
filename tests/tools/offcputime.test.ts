/**
 * offcputime against a workload whose blocking is known: a C program built
 * here sleeps TIMES x MS through nanosleep in
 * main -> known_sleep_parent -> sleeper_function (the syscall instruction
 * inline, so the frame-pointer walk starts in our function) and reports how
 * long it really slept. That stack must carry the slept time, within 10%.
 * Several instances with different filters watch the same sleeps.
 */
import {
  deepEqual as assertDeepEquals,
  equal as assertEquals,
  match as assertMatch,
  ok as assert,
} from "node:assert/strict";
import { formatFoldedLine, parseFolded } from "../../lib/format/folded.ts";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { buildWorkloads, Workload } from "../support/stack_workloads.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";

const TIMES = 10;
const MS = 100;
const KNOWN = "main;known_sleep_parent;sleeper_function";

async function ourPrograms(): Promise<number> {
  return (await loadedProgramNames()).filter((n) => n === "offcputime").length;
}

/** Microseconds on folded lines whose stack contains `path`. */
function usUnder(stdout: string, path: string): number {
  return parseFolded(stdout).filter((s) => s.frames.join(";").includes(path))
    .reduce((n, s) => n + s.count, 0);
}

kernelTest(
  "offcputime: the sleeping stack carries the slept time (10%), filters apply",
  async () => {
    const w = await buildWorkloads();
    const sleeper = new Workload(w.sleeper, [String(TIMES), String(MS)]);
    const tools: ToolProcess[] = [];
    try {
      const pid = String(Number(await sleeper.value("pid")));
      const before = await ourPrograms();
      const variants = {
        all: ["-f", "-p", pid],
        user: ["-f", "-U", "-p", pid],
        within: ["-f", "-p", pid, "-m", String(MS * 500), "-M", String(MS * 2000)],
        tooShort: ["-f", "-p", pid, "-m", String(MS * 2000)],
        text: ["-d", "-p", pid],
        json: ["--json", "-p", pid],
        // comma lists (as profile's) and --perf-max-stack-depth
        pids: ["-f", "-p", `1,${pid}`],
        tids: ["-f", "-t", `${pid},1`],
        userCut: ["-f", "-U", "-p", pid, "--perf-max-stack-depth", "3"],
        kernelCut: ["-f", "-K", "-p", pid, "--perf-max-stack-depth", "6"],
      };
      for (const args of Object.values(variants)) tools.push(new ToolProcess("offcputime", args));
      await waitFor(
        async () => (await ourPrograms()) === before + tools.length,
        20000,
        "offcputime instances to attach",
      );
      await new Promise((r) => setTimeout(r, 100));
      await sleeper.send("go");
      const slept = Number(await sleeper.value("slept_us"));
      for (const t of tools) t.kill("SIGINT");
      const results = await Promise.all(tools.map((t) => t.finish()));
      for (const r of results) assertEquals(r.code, 0, r.stderr);
      const [all, user, within, tooShort, text, json, pids, tids, userCut, kernelCut] = results;

      // Folded lines: exact format, one per stack, round trip.
      const lines = all.stdout.trimEnd().split("\n");
      const stacks = parseFolded(all.stdout);
      assertEquals(stacks.length, lines.length);
      stacks.forEach((s, i) => assertEquals(formatFoldedLine(s.frames, s.count), lines[i]));
      assertEquals(new Set(stacks.map((s) => s.frames.join(";"))).size, stacks.length);

      const total = usUnder(all.stdout, KNOWN);
      console.log(`offcputime: ${total} us under ${KNOWN}; the workload slept ${slept} us`);
      assert(Math.abs(total - slept) <= 0.1 * slept, `${total} us vs ${slept} us slept`);
      assert(Math.abs(slept - TIMES * MS * 1000) <= 0.1 * TIMES * MS * 1000, "workload slept");
      // The kernel part is the nanosleep path, without the tracing machinery.
      const line = stacks.find((s) => s.frames.join(";").includes(KNOWN))!;
      const kernel = line.frames.slice(line.frames.indexOf("sleeper_function") + 1);
      assert(kernel.includes("do_nanosleep"), kernel.join(";"));
      assertEquals(kernel.at(-1), "__schedule");
      assert(!kernel.some((f) => /^bpf_|__traceiter_/.test(f)), kernel.join(";"));

      // -p and -t with comma lists: the same time under the known stack.
      for (const r of [pids, tids]) {
        assert(Math.abs(usUnder(r.stdout, KNOWN) - slept) <= 0.1 * slept, r.stdout);
      }

      // --perf-max-stack-depth: the innermost N frames of each stack, all the time.
      const cut = parseFolded(userCut.stdout);
      for (const s of cut) assert(s.frames.length <= 4, s.frames.join(";"));
      const cutLine = cut.find((s) =>
        s.frames.join(";") === "offsleeper;main;known_sleep_parent;sleeper_function"
      );
      assert(cutLine, userCut.stdout);
      assert(Math.abs(cutLine.count - slept) <= 0.1 * slept, `${cutLine.count} us cut to 3`);
      const kcut = parseFolded(kernelCut.stdout);
      for (const s of kcut) assert(s.frames.length <= 7, s.frames.join(";"));
      const kernelSuffix = kcut.filter((s) =>
        s.frames.length > 1 && kernel.join(";").endsWith(s.frames.slice(1).join(";"))
      ).reduce((n, s) => n + s.count, 0);
      assert(Math.abs(kernelSuffix - slept) <= 0.1 * slept, kernelCut.stdout);

      // -U: user frames only, root first: exactly this line.
      const userLine = parseFolded(user.stdout).find((s) => s.frames.at(-1) === "sleeper_function");
      assert(userLine, user.stdout);
      assertEquals(
        userLine.frames.join(";"),
        `offsleeper;__libc_start_call_main;${KNOWN}`,
      );
      assert(Math.abs(userLine.count - slept) <= 0.1 * slept);

      // -m/-M: each 100 ms block is inside [50, 200] ms, and under a 200 ms minimum.
      assert(Math.abs(usUnder(within.stdout, KNOWN) - slept) <= 0.1 * slept, within.stdout);
      assertEquals(usUnder(tooShort.stdout, KNOWN), 0, tooShort.stdout);

      // The default output: header, kernel frames, "--", user frames, "- comm (tid)", microseconds.
      const t = text.stdout.split("\n");
      assertEquals(
        t[0],
        `Tracing off-CPU time (us) of PID ${pid} by user + kernel stack... Hit Ctrl-C to end.`,
      );
      const at = t.indexOf("    sleeper_function");
      assert(at > 0, text.stdout);
      assertEquals(t[at - 1], "    --");
      assertDeepEquals(t.slice(at + 1, at + 4), [
        "    known_sleep_parent",
        "    main",
        "    __libc_start_call_main",
      ]);
      assertEquals(t[at + 4], `    -                offsleeper (${pid})`);
      assertMatch(t[at + 5], /^ {8}\d+$/);
      assert(Math.abs(Number(t[at + 5]) - slept) <= 0.1 * slept);

      // --json: one object, the same stacks (innermost first) and microseconds.
      const report = JSON.parse(json.stdout) as {
        unit: string;
        stacks: { comm: string; user?: string[]; kernel?: string[]; value: number }[];
      };
      assertEquals(report.unit, "us");
      const js = report.stacks.filter((s) => s.user?.[0] === "sleeper_function");
      assert(js.length > 0, json.stdout);
      assertDeepEquals(js[0].user!.slice(0, 3), ["sleeper_function", "known_sleep_parent", "main"]);
      const jsonUs = js.reduce((n, s) => n + s.value, 0);
      assert(Math.abs(jsonUs - slept) <= 0.1 * slept, `${jsonUs} us in JSON`);
    } finally {
      for (const t of tools) {
        try {
          t.kill("SIGKILL");
        } catch {
          // already exited
        }
      }
      await sleeper.close();
      await Deno.remove(w.dir, { recursive: true });
    }
    await waitFor(async () => (await ourPrograms()) === 0, 3000, "offcputime to unload");
  },
);

kernelTest("offcputime: a duration ends the trace and prints a summary", async () => {
  const { code, stdout, stderr } = await runToolOnce("offcputime", ["-K", "-k", "1"]);
  assertEquals(code, 0, stderr);
  const lines = stdout.split("\n");
  assertEquals(lines[0], "Tracing off-CPU time (us) of kernel threads by kernel stack for 1 secs.");
  // Kernel threads block in the kernel: every block ends in the scheduler.
  assertMatch(stdout, /\n {4}__schedule\n/);
  // A stack lost to a full or colliding stack map shows as missed, and is reported.
  const missed = stdout.split("\n").filter((l) => l === "    [Missed Kernel Stack]").length;
  const warning = stderr.match(/^WARNING: (\d+) stack traces could not be displayed\./m);
  if (missed > 0) assert(warning && Number(warning[1]) >= missed, stderr);
});

for (
  const [args, pattern] of [
    [["-p", "1", "-t", "2"], /^offcputime: -p and -t cannot be used together/],
    [["-u", "-k"], /^offcputime: -u and -k cannot be used together/],
    [["-U", "-K"], /^offcputime: -U and -K cannot be used together/],
    [["-k", "-U"], /^offcputime: displaying user stacks for kernel threads/],
    [["-m", "10", "-M", "5"], /^offcputime: the max block time is below the min block time/],
    [["-m", "0"], /^offcputime: invalid min block time '0': must be at least 1/],
    [["-p", "1,x"], /^offcputime: invalid PID 'x': not an integer/],
    [["-t", "0,1"], /^offcputime: invalid TID '0'/],
    [["--perf-max-stack-depth", "128"], /^offcputime: invalid stack depth '128': too large/],
    [["--stack-storage-size", "4294967296"], /^offcputime: invalid stack storage size .*too large/],
  ] as [string[], RegExp][]
) {
  Deno.test(`offcputime ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("offcputime", args);
    assertEquals(code, 2);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assertMatch(stderr, pattern);
  });
}
