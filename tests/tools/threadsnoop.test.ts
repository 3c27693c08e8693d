/**
 * threadsnoop against a workload whose truth is known: a small C program
 * (built here with gcc, symbols kept) starts five threads with
 * pthread_create(..., bpftk_thread_main, ...), one after the other. Our
 * runs and a bpftrace uprobe on the same libc function watch it in the same
 * window (the installed threadsnoop.bt probes libpthread, where glibc 2.34
 * and later have no pthread_create: it attaches and never fires here).
 */
import { deepEqual, equal as assertEquals, ok as assert } from "node:assert/strict";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { PausedWorkload, waitForPrograms } from "../support/event_tools.ts";
import { runOk, Spawned } from "../support/process.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";

const N = 5;
const LIBC = "/lib/x86_64-linux-gnu/libc.so.6";

/** Waits for a line on stdin, starts N threads, prints "done", waits for end of input. */
const WORKLOAD_C = `
#include <pthread.h>
#include <stdio.h>
void *bpftk_thread_main(void *arg) { return arg; }
int main(void) {
  getchar();
  for (int i = 0; i < ${N}; i++) {
    pthread_t t;
    pthread_create(&t, NULL, bpftk_thread_main, NULL);
    pthread_join(t, NULL);
  }
  printf("done\\n");
  fflush(stdout);
  while (getchar() != EOF) {}
  return 0;
}
`;

async function assertNoneLoaded(): Promise<void> {
  await waitFor(
    async () => !(await loadedProgramNames()).includes("threadsnoop"),
    5000,
    "threadsnoop to unload",
  );
}

kernelTest(
  "threadsnoop: five pthread_create calls with their start function, as bpftrace",
  async (t) => {
    const dir = Deno.makeTempDirSync({ prefix: "threadsnoop-test-" });
    Deno.writeTextFileSync(`${dir}/thr.c`, WORKLOAD_C);
    await runOk("gcc", ["-O0", "-pthread", "-o", `${dir}/thrwl`, `${dir}/thr.c`]);
    const work = new PausedWorkload(`${dir}/thrwl`, []);
    const W = work.pid;
    const text = new ToolProcess("threadsnoop", []);
    const json = new ToolProcess("threadsnoop", ["--json", "-l", LIBC]);
    const bt = new Spawned("bpftrace", [
      "-e",
      `uprobe:${LIBC}:pthread_create /pid == ${W}/ { printf("%d %s %s\\n", pid, comm, usym(arg2)); }`,
    ]);
    const out: Record<string, { code: number; stdout: string; stderr: string }> = {};
    try {
      await text.waitForOutput(/TIME\(ms\) +PID +COMM +FUNC/);
      await waitForPrograms("threadsnoop", 2);
      await bt.waitForOutput(/Attaching 1 probe/, 30_000, "stdout");
      await new Promise((r) => setTimeout(r, 500));
      await work.write("go\n");
      await work.waitForOutput(/done/);
      const mine = (s: string) =>
        s.split("\n").filter((l) =>
          l.includes(` ${W} `) || l.includes(`"pid":${W}`) || l.startsWith(`${W} `)
        ).length;
      await waitFor(
        () => [text, json, bt].every((p) => mine(p.stdout) >= N),
        15_000,
        "five threads everywhere",
      )
        .catch(() => {});
    } finally {
      out.text = await text.stop();
      out.json = await json.stop();
      out.bt = await bt.stop();
      await work.closeStdin();
      await work.wait();
      Deno.removeSync(dir, { recursive: true });
    }
    for (const [name, o] of Object.entries(out)) assertEquals(o.code, 0, `${name}: ${o.stderr}`);

    await t.step(
      "five lines: PID, COMM, FUNC bpftk_thread_main; TIME(ms) from the first event",
      () => {
        assertEquals(out.text.stdout.split("\n")[0], "TIME(ms)   PID    COMM             FUNC");
        const lines = out.text.stdout.split("\n").filter((l) => l.split(/\s+/)[1] === String(W));
        deepEqual(
          lines.map((l) => l.split(/\s+/).slice(1)),
          Array(N).fill([String(W), "thrwl", "bpftk_thread_main"]),
        );
        assert(lines.every((l) => /^\d+ +\d/.test(l)));
      },
    );

    await t.step("bpftrace's uprobe on libc saw the same five, same function", () => {
      const theirs = out.bt.stdout.split("\n").filter((l) => l.startsWith(`${W} `));
      deepEqual(theirs, Array(N).fill(`${W} thrwl bpftk_thread_main`));
    });

    await t.step("--json -l LIBC: the same calls, the caller's TID", () => {
      const events = out.json.stdout.trim().split("\n").map((l) => JSON.parse(l)).filter((e) =>
        e.pid === W
      );
      deepEqual(events.map((e) => [e.tid, e.func]), Array(N).fill([W, "bpftk_thread_main"]));
    });
    await assertNoneLoaded();
  },
  { commands: ["gcc", "bpftrace"] },
);

kernelTest("threadsnoop: SIGINT exits 0 and leaves nothing loaded", async () => {
  const tool = new ToolProcess("threadsnoop", []);
  await tool.waitForOutput(/FUNC/);
  await waitForPrograms("threadsnoop", 1);
  assertEquals((await tool.stop("SIGINT")).code, 0);
  await assertNoneLoaded();
});

kernelTest("threadsnoop -l FILE without pthread_create: one line, exit 1", async () => {
  const { code, stderr } = await runToolOnce("threadsnoop", ["-l", "/etc/passwd"]);
  assertEquals(code, 1, stderr);
  assertEquals(stderr.trim(), "threadsnoop: /etc/passwd: not an ELF file");
});

for (const args of [["-l", "/nonexistent"], ["-l", ""], ["-p", "1"]]) {
  Deno.test(`threadsnoop ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("threadsnoop", args);
    assertEquals(code, 2, stderr);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(stderr.startsWith("threadsnoop: "), stderr);
  });
}
