/**
 * stackcount against a workload whose truth is known: a small C program
 * (built here with gcc, frame pointers kept) calls main -> bpftk_stack_mid
 * -> bpftk_stack_leaf 7 times, and the leaf makes the getppid system call
 * itself (an inline `syscall`, so no libc frame hides it). In the same
 * window: our -P -p run on the tracepoint syscalls:sys_enter_getppid, our
 * -U -f run on a uprobe at bpftk_stack_leaf (every process), our --json -K
 * run, and bpftrace counting the same tracepoint by ustack (bcc stackcount
 * cannot run here: no kernel headers).
 */
import { deepEqual, equal as assertEquals, ok as assert } from "node:assert/strict";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { PausedWorkload, waitForPrograms } from "../support/event_tools.ts";
import { runOk, Spawned } from "../support/process.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";

const N = 7;

const WORKLOAD_C = `
#include <stdio.h>
#include <sys/syscall.h>
volatile long sink;
__attribute__((noinline)) void bpftk_stack_leaf(void) {
  long ret;
  __asm__ volatile("syscall" : "=a"(ret) : "a"(SYS_getppid) : "rcx", "r11", "memory");
  sink += ret;
}
__attribute__((noinline)) void bpftk_stack_mid(void) { bpftk_stack_leaf(); sink++; }
int main(void) {
  getchar();
  for (int i = 0; i < ${N}; i++) bpftk_stack_mid();
  printf("done\\n");
  fflush(stdout);
  while (getchar() != EOF) {}
  return 0;
}
`;

async function assertNoneLoaded(): Promise<void> {
  await waitFor(
    async () => !(await loadedProgramNames()).some((n) => n.startsWith("scount_")),
    10_000,
    "stackcount to unload",
  );
}

/** Multi-line report blocks: frames, then the "comm [PID]" line (with -P) and the count. */
function blocks(stdout: string): { frames: string[]; who?: string; count: number }[] {
  const body = stdout.split("\n\n").slice(1); // after the banner
  const out = [];
  for (const b of body) {
    const lines = b.split("\n").filter((l) => l !== "");
    if (lines.length < 2 || !/^ {4}\d+$/.test(lines.at(-1)!)) continue;
    const count = Number(lines.at(-1)!.trim());
    const who = lines.at(-2)!.startsWith("    ") ? lines.at(-2)!.trim() : undefined;
    const frames = lines.slice(0, who === undefined ? -1 : -2).map((l) => l.trim());
    out.push({ frames, ...(who === undefined ? {} : { who }), count });
  }
  return out;
}

kernelTest(
  "stackcount: 7 getppid calls from leaf <- mid <- main, by tracepoint and uprobe; bpftrace agrees",
  async (t) => {
    const dir = Deno.makeTempDirSync({ prefix: "stackcount-test-" });
    Deno.writeTextFileSync(`${dir}/st.c`, WORKLOAD_C);
    const bin = `${dir}/stwl`;
    await runOk("gcc", ["-O0", "-fno-omit-frame-pointer", "-o", bin, `${dir}/st.c`]);
    const work = new PausedWorkload(bin, []);
    const W = String(work.pid);
    const tp = new ToolProcess("stackcount", ["-P", "-p", W, "t:syscalls:sys_enter_getppid"]);
    const up = new ToolProcess("stackcount", ["-U", "-f", `${bin}:bpftk_stack_leaf`]);
    const json = new ToolProcess("stackcount", [
      "--json",
      "-K",
      "-p",
      W,
      "t:syscalls:sys_enter_getppid",
    ]);
    const bt = new Spawned("bpftrace", [
      "-e",
      `tracepoint:syscalls:sys_enter_getppid /pid == ${W}/ { @[ustack] = count(); }`,
    ]);
    const out: Record<string, { code: number; stdout: string; stderr: string }> = {};
    try {
      await tp.waitForOutput(/Hit Ctrl-C to end/, 30_000);
      await bt.waitForOutput(/Attaching 1 probe/, 30_000);
      await waitForPrograms("scount_0", 3);
      await work.write("go\n");
      await work.waitForOutput(/done/);
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      out.tp = await tp.stop();
      out.up = await up.stop();
      out.json = await json.stop();
      out.bt = await bt.stop(); // while the workload lives: bpftrace names its frames now
      await work.closeStdin();
      await work.wait();
      Deno.removeSync(dir, { recursive: true });
    }
    for (const [name, o] of Object.entries(out)) assertEquals(o.code, 0, `${name}: ${o.stderr}`);

    await t.step("-P -p: one stack, kernel then user frames, 'stwl [PID]', 7", () => {
      const lines = out.tp.stdout.split("\n");
      assertEquals(
        lines[0],
        'Tracing 1 functions for "t:syscalls:sys_enter_getppid"... Hit Ctrl-C to end.',
      );
      assertEquals(lines.at(-2), "Detaching...");
      const found = blocks(out.tp.stdout);
      assertEquals(found.length, 1, out.tp.stdout);
      const [b] = found;
      assertEquals(b.who, `stwl [${W}]`);
      assertEquals(b.count, N);
      const leaf = b.frames.indexOf("bpftk_stack_leaf");
      assert(leaf > 0, out.tp.stdout);
      deepEqual(b.frames.slice(leaf, leaf + 3), ["bpftk_stack_leaf", "bpftk_stack_mid", "main"]);
      assert(b.frames.slice(0, leaf).includes("do_syscall_64"), out.tp.stdout);
    });

    await t.step("-U -f on the uprobe: one folded line from main to the leaf, 7", () => {
      const lines = out.up.stdout.split("\n").filter((l) => l.includes("bpftk_stack_leaf"));
      assertEquals(lines.length, 1, out.up.stdout);
      const m = lines[0].match(/^(.*) (\d+)$/)!;
      const frames = m[1].split(";");
      assertEquals(frames.at(-1), "bpftk_stack_leaf");
      // At the leaf's first instruction its own frame is not set up yet: the walk
      // goes from the leaf to its caller's caller (main), as every frame-pointer unwinder.
      assert(frames.includes("main"), lines[0]);
      assertEquals(Number(m[2]), N);
      // Nothing but folded lines (flame graph input).
      assert(out.up.stdout.trim().split("\n").every((l) => /^\S.* \d+$/.test(l)), out.up.stdout);
    });

    await t.step("--json -K: kernel frames only, 7", () => {
      const report = JSON.parse(out.json.stdout.trim());
      assertEquals(report.stacks.length, 1, out.json.stdout);
      assertEquals(report.stacks[0].count, N);
      assert(report.stacks[0].kernel.includes("do_syscall_64"));
      assertEquals(report.stacks[0].user, undefined);
    });

    await t.step("bpftrace @[ustack]: the same user frames, 7", () => {
      const m = out.bt.stdout.match(/@\[\n([\s\S]*?)\n\]: (\d+)/);
      assert(m, out.bt.stdout);
      const theirs = m[1].split("\n").map((l) => l.trim().replace(/\+\d+$/, ""));
      assertEquals(Number(m[2]), N);
      const ours = blocks(out.tp.stdout)[0].frames;
      const leaf = ours.indexOf("bpftk_stack_leaf");
      deepEqual(theirs.slice(0, 3), ours.slice(leaf, leaf + 3));
    });
    await assertNoneLoaded();
  },
  { commands: ["gcc", "bpftrace"] },
);

kernelTest("stackcount: SIGINT exits 0 and leaves nothing loaded", async () => {
  const tool = new ToolProcess("stackcount", ["t:sched:sched_switch"]);
  await tool.waitForOutput(/Hit Ctrl-C/);
  await waitForPrograms("scount_0", 1);
  const o = await tool.stop("SIGINT");
  assertEquals(o.code, 0, o.stderr);
  assert(o.stdout.trimEnd().endsWith("Detaching..."), o.stdout);
  await assertNoneLoaded();
});

for (
  const args of [
    [],
    ["-U", "-K", "c:malloc"],
    ["nolibrary:malloc"],
    ["-c", "x", "c:malloc"],
    ["-D", "0", "c:malloc"],
  ]
) {
  Deno.test(`stackcount ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("stackcount", args);
    assertEquals(code, 2, stderr);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(stderr.startsWith("stackcount: "), stderr);
  });
}
