/**
 * memleak against a workload whose truth is known: a small C program
 * (built here with gcc, frame pointers kept) leaks 12 malloc(200) from
 * bpftk_leak() and 5 calloc(8, 16) from bpftk_leak_calloc(), and mallocs
 * and frees 300 bytes 10 times in bpftk_tidy(). In the same window: our
 * -p -o 0 run every second, our --json -p run with -o 10 minutes (nothing
 * that young may show), and bpftrace keeping the outstanding malloc(200)
 * addresses (bcc memleak cannot run here: no kernel headers; libbpf-tools
 * memleak is not installed by Debian's package).
 */
import { deepEqual, equal as assertEquals, ok as assert } from "node:assert/strict";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { PausedWorkload, waitForPrograms } from "../support/event_tools.ts";
import { runOk, Spawned } from "../support/process.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";

const LIBC = "/lib/x86_64-linux-gnu/libc.so.6";

const WORKLOAD_C = `
#include <stdio.h>
#include <stdlib.h>
void *keep[64];
__attribute__((noinline)) void bpftk_leak(int i) { keep[i] = malloc(200); }
__attribute__((noinline)) void bpftk_leak_calloc(int i) { keep[32 + i] = calloc(8, 16); }
__attribute__((noinline)) void bpftk_tidy(void) { void *p = malloc(300); free(p); }
int main(void) {
  getchar();
  for (int i = 0; i < 12; i++) bpftk_leak(i);
  for (int i = 0; i < 5; i++) bpftk_leak_calloc(i);
  for (int i = 0; i < 10; i++) bpftk_tidy();
  printf("done\\n");
  fflush(stdout);
  while (getchar() != EOF) {}
  return 0;
}
`;

async function assertNoneLoaded(): Promise<void> {
  await waitFor(
    async () => !(await loadedProgramNames()).some((n) => n.startsWith("mleak_")),
    10_000,
    "memleak to unload",
  );
}

/** The last report's stacks: bytes, allocations, frames. */
function lastReport(stdout: string): { bytes: number; allocs: number; frames: string[] }[] {
  const reports = stdout.split(
    /^\[\d\d:\d\d:\d\d\] Top 10 stacks with outstanding allocations:\n/m,
  );
  const last = reports.at(-1)!;
  const out: { bytes: number; allocs: number; frames: string[] }[] = [];
  for (const line of last.split("\n")) {
    const m = line.match(/^\t(\d+) bytes in (\d+) allocations from stack$/);
    if (m) out.push({ bytes: Number(m[1]), allocs: Number(m[2]), frames: [] });
    else if (line.startsWith("\t\t")) out.at(-1)!.frames.push(line.slice(2));
  }
  return out;
}

kernelTest(
  "memleak: 12 x 200 bytes and 5 x 128 bytes leaked, by stack; 300-byte frees gone; bpftrace agrees",
  async (t) => {
    const dir = Deno.makeTempDirSync({ prefix: "memleak-test-" });
    Deno.writeTextFileSync(`${dir}/ml.c`, WORKLOAD_C);
    const bin = `${dir}/mlwl`;
    await runOk("gcc", ["-O0", "-fno-omit-frame-pointer", "-o", bin, `${dir}/ml.c`]);
    const work = new PausedWorkload(bin, []);
    const W = String(work.pid);
    const text = new ToolProcess("memleak", ["-p", W, "-o", "0", "1"]);
    const young = new ToolProcess("memleak", ["--json", "-p", W, "-o", "600000", "1"]);
    const bt = new Spawned("bpftrace", [
      "-e",
      `uprobe:${LIBC}:malloc /pid == ${W}/ { @sz[tid] = arg0; }
       uretprobe:${LIBC}:malloc /pid == ${W}/ { if (@sz[tid] == 200) { @out[retval] = 1; } delete(@sz[tid]); }
       uprobe:${LIBC}:free /pid == ${W}/ { delete(@out[arg0]); }`,
    ]);
    const out: Record<string, { code: number; stdout: string; stderr: string }> = {};
    try {
      await text.waitForOutput(/Attaching to pid/, 30_000);
      await bt.waitForOutput(/Attaching 3 probes/, 30_000);
      await waitForPrograms("mleak_rmalloc", 2);
      await work.write("go\n");
      await work.waitForOutput(/done/);
      await new Promise((r) => setTimeout(r, 1500)); // a report after the last allocation
    } finally {
      out.text = await text.stop();
      out.young = await young.stop();
      out.bt = await bt.stop();
      await work.closeStdin();
      await work.wait();
      Deno.removeSync(dir, { recursive: true });
    }
    for (const [name, o] of Object.entries(out)) assertEquals(o.code, 0, `${name}: ${o.stderr}`);

    await t.step("-o 0: 2400 bytes in 12 from bpftk_leak, 640 in 5 from calloc, no tidy", () => {
      assertEquals(out.text.stdout.split("\n")[0], `Attaching to pid ${W}, Ctrl+C to quit.`);
      const stacks = lastReport(out.text.stdout);
      const from = (fn: string) => stacks.filter((s) => s.frames[0]?.startsWith(`${fn}+0x`));
      deepEqual(from("bpftk_leak").map((s) => [s.bytes, s.allocs]), [[2400, 12]]);
      deepEqual(from("bpftk_leak_calloc").map((s) => [s.bytes, s.allocs]), [[640, 5]]);
      const leak = from("bpftk_leak")[0];
      assert(/^bpftk_leak\+0x[0-9a-f]+ \[mlwl\]$/.test(leak.frames[0]), leak.frames[0]);
      assert(leak.frames[1].startsWith("main+0x"), leak.frames.join(" | "));
      assert(!out.text.stdout.includes("bpftk_tidy"), out.text.stdout);
      // Largest last, at most 10 stacks.
      assert(stacks.length <= 10);
      deepEqual(stacks.map((s) => s.bytes), stacks.map((s) => s.bytes).toSorted((a, b) => a - b));
    });

    await t.step("--json -o 600000: nothing ten minutes old", () => {
      const reports = out.young.stdout.trim().split("\n").map((l) => JSON.parse(l));
      assert(reports.length >= 1);
      for (const r of reports) deepEqual(r.stacks, []);
    });

    await t.step("bpftrace: the same 12 malloc(200) still outstanding", () => {
      const left = out.bt.stdout.split("\n").filter((l) => /^@out\[\d+\]: 1$/.test(l));
      assertEquals(left.length, 12, out.bt.stdout);
    });
    await assertNoneLoaded();
  },
  { commands: ["gcc", "bpftrace"] },
);

kernelTest("memleak -c: runs the command, reports its leaks, ends with it", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "memleak-test-" });
  try {
    Deno.writeTextFileSync(`${dir}/ml.c`, WORKLOAD_C);
    await runOk("gcc", ["-O0", "-fno-omit-frame-pointer", "-o", `${dir}/mlwl`, `${dir}/ml.c`]);
    // The command reads end of file at once (stdin is /dev/null), leaks and exits: memleak ends too.
    const o = await runToolOnce("memleak", ["-o", "0", "-c", `${dir}/mlwl`, "1"]);
    assertEquals(o.code, 0, o.stderr);
    assert(o.stdout.startsWith(`Executing '${dir}/mlwl' and tracing the resulting process.`));
    const stacks = lastReport(o.stdout);
    assert(stacks.some((s) => s.bytes === 2400 && s.allocs === 12), o.stdout);
    assert(stacks.some((s) => s.bytes === 640 && s.allocs === 5), o.stdout);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
  await assertNoneLoaded();
});

kernelTest("memleak: SIGINT exits 0 and leaves nothing loaded", async () => {
  const tool = new ToolProcess("memleak", ["-p", String(Deno.pid)]);
  await tool.waitForOutput(/Attaching to pid/, 30_000);
  await waitForPrograms("mleak_rmalloc", 1);
  const o = await tool.stop("SIGINT");
  assertEquals(o.code, 0, o.stderr);
  await assertNoneLoaded();
});

for (
  const args of [
    [],
    ["-p", "1", "-c", "true"],
    ["-p", "1", "-z", "10", "-Z", "5"],
    ["-p", "x"],
    ["-p", "1", "-O", "/nonexistent"],
  ]
) {
  Deno.test(`memleak ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("memleak", args);
    assertEquals(code, 2, stderr);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(stderr.startsWith("memleak: "), stderr);
  });
}
