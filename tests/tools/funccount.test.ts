/**
 * funccount against a workload whose truth is known: a small C program
 * (built here with gcc and <sys/sdt.h>) calls bpftk_count_a() 3 times,
 * bpftk_count_b() 7 times, bpftk_other() 5 times, fires its USDT probe
 * bpftk:tick 4 times and calls getppid(2) 6 times. In the same window:
 * our glob run on its functions (every process), a -r regular expression
 * run with -p, a --json USDT run, a tracepoint run with -p, and bpftrace
 * counting the same uprobes (bcc funccount cannot run here: no kernel
 * headers).
 */
import { deepEqual, equal as assertEquals, ok as assert } from "node:assert/strict";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { PausedWorkload, waitForPrograms } from "../support/event_tools.ts";
import { runOk, Spawned } from "../support/process.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";

const WORKLOAD_C = `
#include <stdio.h>
#include <sys/sdt.h>
#include <sys/syscall.h>
#include <unistd.h>
volatile int sink;
__attribute__((noinline)) void bpftk_count_a(void) { sink++; }
__attribute__((noinline)) void bpftk_count_b(void) { sink++; }
__attribute__((noinline)) void bpftk_other(void) { sink++; }
int main(void) {
  getchar();
  for (int i = 0; i < 3; i++) bpftk_count_a();
  for (int i = 0; i < 7; i++) bpftk_count_b();
  for (int i = 0; i < 5; i++) bpftk_other();
  for (int i = 0; i < 4; i++) DTRACE_PROBE1(bpftk, tick, i);
  for (int i = 0; i < 6; i++) syscall(SYS_getppid);
  printf("done\\n");
  fflush(stdout);
  while (getchar() != EOF) {}
  return 0;
}
`;

async function assertNoneLoaded(): Promise<void> {
  await waitFor(
    async () => !(await loadedProgramNames()).some((n) => n.startsWith("fcount_")),
    10_000,
    "funccount to unload",
  );
}

/** The FUNC/COUNT rows of a text report. */
function rows(stdout: string): [string, number][] {
  const lines = stdout.split("\n");
  const start = lines.findIndex((l) => /^FUNC +COUNT$/.test(l));
  assert(start >= 0, stdout);
  const out: [string, number][] = [];
  for (const l of lines.slice(start + 1)) {
    const m = l.match(/^(\S+) +(\d+)$/);
    if (!m) break;
    out.push([m[1], Number(m[2])]);
  }
  return out;
}

kernelTest(
  "funccount: functions by glob and regexp, a USDT probe, a tracepoint; bpftrace agrees",
  async (t) => {
    const dir = Deno.makeTempDirSync({ prefix: "funccount-test-" });
    Deno.writeTextFileSync(`${dir}/fc.c`, WORKLOAD_C);
    const bin = `${dir}/fcwl`;
    await runOk("gcc", ["-O0", "-o", bin, `${dir}/fc.c`]);
    const work = new PausedWorkload(bin, []);
    const W = String(work.pid);
    const glob = new ToolProcess("funccount", [`${bin}:bpftk_count_*`]);
    const re = new ToolProcess("funccount", ["-r", "-p", W, `${bin}:bpftk_(count_b|oth)`]);
    const usdt = new ToolProcess("funccount", ["--json", `u:${bin}:tick`]);
    const tp = new ToolProcess("funccount", ["-p", W, "t:syscalls:sys_enter_getppid"]);
    const bt = new Spawned("bpftrace", [
      "-e",
      `uprobe:${bin}:bpftk_count_* { @[func] = count(); }`,
    ]);
    const out: Record<string, { code: number; stdout: string; stderr: string }> = {};
    try {
      for (const p of [glob, re, tp]) await p.waitForOutput(/Hit Ctrl-C to end/, 30_000);
      await bt.waitForOutput(/Attaching 2 probes/, 30_000);
      await waitForPrograms("fcount_0", 4);
      await work.write("go\n");
      await work.waitForOutput(/done/);
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      out.glob = await glob.stop();
      out.re = await re.stop();
      out.usdt = await usdt.stop();
      out.tp = await tp.stop();
      out.bt = await bt.stop();
      await work.closeStdin();
      await work.wait();
      Deno.removeSync(dir, { recursive: true });
    }
    for (const [name, o] of Object.entries(out)) assertEquals(o.code, 0, `${name}: ${o.stderr}`);

    await t.step("glob: 2 functions traced, 3 and 7 calls, sorted by count", () => {
      const lines = out.glob.stdout.split("\n");
      assertEquals(
        lines[0],
        `Tracing 2 functions for "${bin}:bpftk_count_*"... Hit Ctrl-C to end.`,
      );
      assertEquals(lines.at(-2), "Detaching...");
      deepEqual(rows(out.glob.stdout), [["bpftk_count_a", 3], ["bpftk_count_b", 7]]);
      assertEquals(
        lines.find((l) => l.startsWith("bpftk_count_a")),
        `${"bpftk_count_a".padEnd(36)} ${"3".padStart(8)}`, // bcc's "%-36s %8d"
      );
    });

    await t.step("-r -p: the regular expression's two functions, 5 and 7", () => {
      assert(out.re.stdout.startsWith("Tracing 2 functions"), out.re.stdout);
      deepEqual(rows(out.re.stdout), [["bpftk_other", 5], ["bpftk_count_b", 7]]);
    });

    await t.step("--json u:BIN:tick: the USDT probe fired 4 times", () => {
      const reports = out.usdt.stdout.trim().split("\n").map((l) => JSON.parse(l));
      assertEquals(reports.length, 1);
      deepEqual(reports[0].functions, [{ func: "tick", count: 4 }]);
    });

    await t.step("-p t:syscalls:sys_enter_getppid: 6", () => {
      deepEqual(rows(out.tp.stdout), [["syscalls:sys_enter_getppid", 6]]);
    });

    await t.step("bpftrace counted the same uprobes", () => {
      const counts = Object.fromEntries(
        [...out.bt.stdout.matchAll(/^@\[(\w+)\]: (\d+)$/gm)].map((m) => [m[1], Number(m[2])]),
      );
      deepEqual(counts, { bpftk_count_a: 3, bpftk_count_b: 7 });
    });
    await assertNoneLoaded();
  },
  { commands: ["gcc", "bpftrace"] },
);

kernelTest("funccount: SIGINT exits 0 and leaves nothing loaded", async () => {
  const tool = new ToolProcess("funccount", ["c:malloc"]);
  await tool.waitForOutput(/Hit Ctrl-C/);
  await waitForPrograms("fcount_0", 1);
  const o = await tool.stop("SIGINT");
  assertEquals(o.code, 0, o.stderr);
  assert(o.stdout.trimEnd().endsWith("Detaching..."), o.stdout);
  await assertNoneLoaded();
});

for (
  const [args, why] of [
    [["c:no_such_function_*"], /no functions in .* match/],
    [["u:/bin/true:nothing"], /has no USDT probe matching/],
    [["t:nosuch:event"], /no tracepoints match/],
  ] as const
) {
  Deno.test(`funccount ${args.join(" ")}: one line, exit 1`, async () => {
    const { code, stderr } = await runToolOnce("funccount", [...args]);
    assertEquals(code, 1, stderr);
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(why.test(stderr), stderr);
  });
}

for (
  const args of [
    [],
    ["nolibrary:malloc"],
    [":malloc"],
    ["-i", "0", "c:malloc"],
    ["-r", "c:("],
    ["x:y:z:w"],
  ]
) {
  Deno.test(`funccount ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("funccount", args);
    assertEquals(code, 2, stderr);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(stderr.startsWith("funccount: "), stderr);
  });
}
