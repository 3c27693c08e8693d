/**
 * mountsnoop against a workload whose truth is known: a Python process that
 * mounts a tmpfs three times (umounting each, the last with MNT_DETACH) and
 * makes one mount that fails (ENOENT), with mount(2) and umount2(2) through
 * libc. Our runs and libbpf-tools mountsnoop watch it in the same window.
 */
import { deepEqual, equal as assertEquals, ok as assert } from "node:assert/strict";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { PausedWorkload, ReferenceTool, waitForPrograms } from "../support/event_tools.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";

const PYTHON = "/usr/bin/python3";

/** Waits for "go"; three mounts and umounts, one failed mount; prints its mount namespace. */
const WORKLOAD = String.raw`
import ctypes, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
target = sys.argv[1].encode()
sys.stdin.readline()
for i in range(3):
    assert libc.mount(b"bpftk-test", target, b"tmpfs", 0, b"size=1m,mode=700") == 0
    assert libc.umount2(target, 2 if i == 2 else 0) == 0   # MNT_DETACH the last time
assert libc.mount(b"bpftk-test", b"/nonexistent/bpftk", b"tmpfs", 3, None) == -1  # RDONLY|NOSUID
ns = os.readlink("/proc/self/ns/mnt")
print(json.dumps({"mnt_ns": int(ns[5:-1])}), flush=True)
`;

/** Lines of the workload's pid, as [COMM, PID, TID, MNT_NS, CALL]. */
function rows(stdout: string, pid: number): string[][] {
  return stdout.split("\n").map((l) => /^(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(.*)$/.exec(l))
    .filter((m) => m && m[2] === String(pid)).map((m) => m!.slice(1));
}

async function assertNoneLoaded(): Promise<void> {
  await waitFor(
    async () =>
      !(await loadedProgramNames()).some((n) => n.startsWith("mount_") || n.startsWith("umount_")),
    5000,
    "mountsnoop programs to unload",
  );
}

kernelTest("mountsnoop: three tmpfs mounts give three mount lines, as libbpf-tools", async (t) => {
  const dir = Deno.makeTempDirSync({ prefix: "mountsnoop-test-" });
  const work = new PausedWorkload(PYTHON, ["-c", WORKLOAD, dir]);
  const W = String(work.pid);
  const runs = {
    plain: new ToolProcess("mountsnoop", ["-p", W]),
    time: new ToolProcess("mountsnoop", ["-t", "-p", W]),
    detailed: new ToolProcess("mountsnoop", ["-d", "-p", W]),
    json: new ToolProcess("mountsnoop", ["--json", "-p", W]),
    other: new ToolProcess("mountsnoop", ["-p", "1"]),
  };
  const ref = new ReferenceTool("/usr/sbin/mountsnoop", ["-p", W]);
  const out: Record<string, { code: number; stdout: string; stderr: string }> = {};
  let nsInode = 0;
  try {
    for (const [name, p] of Object.entries(runs)) {
      if (name !== "json" && name !== "detailed") await p.waitForOutput(/COMM +PID/);
    }
    await waitForPrograms("umount_exit", Object.keys(runs).length);
    await ref.waitForOutput(/COMM +PID/);
    const done = await work.run();
    assertEquals(done.code, 0, done.stderr);
    nsInode = JSON.parse(done.stdout).mnt_ns;
    await waitFor(
      () => [runs.plain, runs.time, ref].every((p) => p.stdout.includes("ENOENT")),
      15_000,
      "the failed mount in every run",
    ).catch(() => {});
  } finally {
    for (const [name, p] of Object.entries(runs)) out[name] = await p.stop();
    out.ref = await ref.stop();
    Deno.removeSync(dir, { recursive: true });
  }
  for (const [name, o] of Object.entries(out)) assertEquals(o.code, 0, `${name}: ${o.stderr}`);
  const pid = work.pid, ns = String(nsInode);
  const mount = `mount("bpftk-test", "${dir}", "tmpfs", 0x0, "size=1m,mode=700") = 0`;
  const calls = [
    mount,
    `umount("${dir}", 0x0) = 0`,
    mount,
    `umount("${dir}", 0x0) = 0`,
    mount,
    `umount("${dir}", MNT_DETACH) = 0`,
    `mount("bpftk-test", "/nonexistent/bpftk", "tmpfs", MS_RDONLY | MS_NOSUID, "") = -ENOENT`,
  ];
  const expected = calls.map((c) => ["python3", String(pid), String(pid), ns, c]);

  await t.step("three mounts, three umounts, one ENOENT: COMM PID TID MNT_NS CALL", () => {
    assertEquals(
      out.plain.stdout.split("\n")[0],
      "COMM             PID     TID     MNT_NS      CALL",
    );
    deepEqual(rows(out.plain.stdout, pid), expected);
    assertEquals(
      rows(out.plain.stdout, pid).filter((r) => r[4].startsWith("mount(") && r[4].endsWith(" = 0"))
        .length,
      3,
    );
  });

  await t.step("libbpf-tools mountsnoop printed the same (its MNT_DETACH is misnamed)", () => {
    const theirs = rows(out.ref.stdout, pid);
    assertEquals(theirs.length, expected.length, out.ref.stdout);
    // libbpf-tools names umount flags with the MS_* table: MNT_DETACH (2) shows as MS_NOSUID
    deepEqual(theirs.filter((_, i) => i !== 5), expected.filter((_, i) => i !== 5));
    assertEquals(theirs[5][4], `umount("${dir}", MS_NOSUID) = 0`);
  });

  await t.step("-t: a HH:MM:SS column", () => {
    const lines = out.time.stdout.split("\n");
    assertEquals(lines[0], "TIME     COMM             PID     TID     MNT_NS      CALL");
    const mine = lines.filter((l) => l.includes(` ${pid} `));
    assertEquals(mine.length, calls.length);
    mine.forEach((l, i) => assert(/^\d\d:\d\d:\d\d python3 /.test(l) && l.endsWith(calls[i]), l));
  });

  await t.step("-d: one field per line, blank line between calls", () => {
    const blocks = out.detailed.stdout.trim().split("\n\n");
    assertEquals(blocks.length, calls.length, out.detailed.stdout);
    const first = blocks[0].split("\n");
    deepEqual(first.filter((l) => !l.startsWith("LAT:")), [
      `PID:    ${pid}`,
      `TID:    ${pid}`,
      "COMM:   python3",
      "OP:     MOUNT",
      "RET:    0",
      `MNT_NS: ${ns}`,
      "FS:     tmpfs",
      "SOURCE: bpftk-test",
      `TARGET: ${dir}`,
      "DATA:   size=1m,mode=700",
      "FLAGS:  0x0",
    ]);
    assert(/^LAT: {4}\d+us$/.test(first[5]), first[5]);
    assert(blocks[6].includes("RET:    -ENOENT") && blocks[5].includes("FLAGS:  MNT_DETACH"));
  });

  await t.step("--json: the same calls; -p 1: none of them", () => {
    const events = out.json.stdout.trim().split("\n").map((l) => JSON.parse(l));
    deepEqual(
      events.map((e) => [e.op, e.target, e.flags, e.ret, e.mntNs]),
      [
        ["mount", dir, 0, 0, nsInode],
        ["umount", dir, 0, 0, nsInode],
        ["mount", dir, 0, 0, nsInode],
        ["umount", dir, 0, 0, nsInode],
        ["mount", dir, 0, 0, nsInode],
        ["umount", dir, 2, 0, nsInode],
        ["mount", "/nonexistent/bpftk", 3, -2, nsInode],
      ],
    );
    assertEquals(events[0].data, "size=1m,mode=700");
    deepEqual(rows(out.other.stdout, pid), []);
  });
  await assertNoneLoaded();
});

kernelTest("mountsnoop: SIGINT exits 0 and leaves nothing loaded", async () => {
  const tool = new ToolProcess("mountsnoop", []);
  await tool.waitForOutput(/COMM/);
  await waitForPrograms("umount_exit", 1);
  assertEquals((await tool.stop("SIGINT")).code, 0);
  await assertNoneLoaded();
});

for (
  const [args, pattern] of [
    [["-p", "x"], /invalid PID 'x': not an integer/],
    [["-p", "-3"], /invalid PID '-3': negative/],
    [["-z"], /unknown option '-z'/],
  ] as [string[], RegExp][]
) {
  Deno.test(`mountsnoop ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("mountsnoop", args);
    assertEquals(code, 2, stderr);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(stderr.startsWith("mountsnoop: ") && pattern.test(stderr), stderr);
  });
}
