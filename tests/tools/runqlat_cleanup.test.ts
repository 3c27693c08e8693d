/**
 * runqlat's exits: whatever way it stops (Ctrl-C, SIGTERM, `| head`, a thrown
 * error), none of its programs stays loaded; bad input and missing privileges
 * or libraries get one line and the documented exit status.
 */
import { equal as assertEquals, ok as assert } from "node:assert/strict";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { REPO_ROOT, runToolOnce, ToolProcess } from "../support/tool_process.ts";
import { runToolWithFault } from "../support/fault_after_attach.ts";
import { run, runOk } from "../support/process.ts";

async function ourPrograms(): Promise<number> {
  return (await loadedProgramNames()).filter((n) => n.startsWith("runqlat_")).length;
}

async function assertNoneLoaded(): Promise<void> {
  // The kernel frees programs asynchronously (RCU) after the last fd closes.
  await waitFor(async () => (await ourPrograms()) === 0, 3000, "runqlat programs to unload");
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  kernelTest(`runqlat: ${signal} prints the histogram and unloads everything`, async () => {
    assertEquals(await ourPrograms(), 0, "runqlat programs loaded before the test");
    const p = new ToolProcess("runqlat", []);
    await p.waitForOutput(/Tracing run queue latency/);
    assertEquals(await ourPrograms(), 3, "the three programs are loaded while tracing");
    await new Promise((r) => setTimeout(r, 300));
    p.kill(signal);
    const { code, stdout } = await p.finish();
    assertEquals(code, 0);
    assert(/usecs\s+: count\s+distribution/.test(stdout), stdout);
    await assertNoneLoaded();
  });
}

kernelTest("runqlat | head -1: exits on the closed pipe and unloads", async () => {
  // 1000 intervals: only exiting on the closed pipe ends it before its deadline.
  const out = await run("bash", [
    "-c",
    `deno run -A ${REPO_ROOT}tools/runqlat.ts 1 1000 | head -1; echo "status \${PIPESTATUS[0]}"`,
  ], { deadlineMs: 30_000 });
  const text = out.stdout;
  assert(text.startsWith("Tracing run queue latency"), text);
  assert(/status 0/.test(text), `exit on a closed pipe: ${text}`);
  assertEquals(out.stderr, "", "no error output on a closed pipe");
  await assertNoneLoaded();
});

kernelTest("runqlat: a thrown error after attach leaves nothing loaded", async () => {
  const { code, stderr } = await runToolWithFault("runqlat", ["1", "1"]);
  assertEquals(code, 1);
  assertEquals(stderr.trim().split("\n").length, 1, stderr);
  assert(/^runqlat: injected fault/.test(stderr), stderr);
  await assertNoneLoaded();
});

for (
  const [args, pattern] of [
    [["-x"], /^runqlat: unknown option '-x'/],
    [["-p", "notapid"], /^runqlat: invalid PID 'notapid': not an integer/],
    [["-p", "-1"], /^runqlat: invalid PID '-1': negative/],
    [["1", "99999999999999999999"], /^runqlat: invalid count '9+': too large/],
    [["1", "2", "3"], /^runqlat: unrecognized positional argument: '3'/],
    [["0"], /^runqlat: invalid interval '0': must be at least 1/],
    [["-c", "/nonexistent-cgroup"], /^runqlat: -c \/nonexistent-cgroup: no such cgroup/],
    [["-c", "/etc/hostname"], /^runqlat: -c \/etc\/hostname: not a directory/],
    [["-c", "/tmp"], /^runqlat: -c \/tmp: not a cgroup v2 directory/],
    [["-c", ""], /^runqlat: invalid -c: empty cgroup path/],
    [["-P", "-L"], /^runqlat: --pidnss, -P and -L cannot be used together/],
  ] as [string[], RegExp][]
) {
  Deno.test(`runqlat ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("runqlat", args);
    assertEquals(code, 2);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(pattern.test(stderr), stderr);
  });
}

Deno.test("runqlat --help: bcc-style USAGE and EXAMPLES, exit 0", async () => {
  const { code, stdout } = await runToolOnce("runqlat", ["--help"]);
  assertEquals(code, 0);
  assert(/^USAGE: runqlat /m.test(stdout), stdout);
  assert(/^EXAMPLES:/m.test(stdout), stdout);
  assert(stdout.split("\n").every((l) => l.length < 80), "help fits in 80 columns");
});

kernelTest("runqlat as a non-root user: exit 1, one line naming the privilege", async () => {
  // A copy of the tree that user `nobody` can read, and a Deno cache it can write.
  const dir = Deno.makeTempDirSync();
  try {
    await runOk("cp", [
      "-r",
      `${REPO_ROOT}tools`,
      `${REPO_ROOT}lib`,
      `${REPO_ROOT}bytecode`,
      `${REPO_ROOT}mod.ts`,
      `${REPO_ROOT}deno.json`,
      dir,
    ]);
    await runOk("chmod", ["-R", "a+rwX", dir]);
    const out = await run("setpriv", [
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
      "deno",
      "run",
      "-A",
      `${dir}/tools/runqlat.ts`,
      "1",
      "1",
    ], { env: { DENO_DIR: `${dir}/.deno`, HOME: dir } });
    const stderr = out.stderr;
    assertEquals(out.code, 1, stderr);
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(/^runqlat: permission denied: .*root.*CAP_BPF/.test(stderr), stderr);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

kernelTest("runqlat without libbpf.so.1: names the library and how to install it", async () => {
  // Hide the library in a private mount namespace: bind /dev/null over it.
  const lib = await Deno.realPath("/lib/x86_64-linux-gnu/libbpf.so.1");
  const out = await run("unshare", [
    "-m",
    "bash",
    "-c",
    `mount --bind /dev/null ${lib} && exec deno run -A ${REPO_ROOT}tools/runqlat.ts 1 1`,
  ]);
  const stderr = out.stderr;
  assertEquals(out.code, 1, stderr);
  assertEquals(stderr.trim().split("\n").length, 1, stderr);
  assert(/^runqlat: cannot load libbpf\.so\.1 .*apt-get install libbpf1/.test(stderr), stderr);
});
