/**
 * filetop against a workload whose file I/O is known: one thread writes its
 * file 10 x 4096 bytes and reads it back 7 x 1000 (pread), reads a second
 * file 3 x 2048, and writes 5 x 100 bytes into a pipe. Each (thread, file)
 * line must carry exactly those counts; the pipe only with -a, as type O.
 * libbpf-tools filetop needs kprobes on vfs_read/vfs_write: it cannot run
 * here, so there is no cross-check in the window.
 */
import { deepEqual, equal as assertEquals, ok as assert } from "node:assert/strict";
import { PausedWorkload } from "../support/event_tools.ts";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";

const WORKLOAD = `
import os, sys
a, b = sys.argv[1], sys.argv[2]
with open(b, "wb") as f:
    f.write(b"z" * 8192)
r, w = os.pipe()
print("ready", flush=True)
sys.stdin.readline()
fd = os.open(a, os.O_RDWR | os.O_CREAT, 0o644)
for _ in range(10):
    os.write(fd, b"x" * 4096)
for _ in range(7):
    os.pread(fd, 1000, 0)
os.close(fd)
fd = os.open(b, os.O_RDONLY)
for i in range(3):
    os.pread(fd, 2048, i * 2048)
os.close(fd)
for _ in range(5):
    os.write(w, b"p" * 100)
print(os.getpid(), flush=True)
`;

async function ourPrograms(): Promise<number> {
  return (await loadedProgramNames()).filter((n) => n === "filetop").length;
}

/** The table's rows: [TID, COMM, READS, WRITES, R_Kb, W_Kb, T, FILE]. */
function rows(stdout: string): string[][] {
  const lines = stdout.split("\n");
  const at = lines.findIndex((l) => l.startsWith("TID "));
  assertEquals(lines[at], "TID     COMM             READS  WRITES R_Kb    W_Kb    T FILE");
  assert(/^\d\d:\d\d:\d\d loadavg: /.test(lines[at - 2]), stdout);
  return lines.slice(at + 1).filter((l) => l).map((l) => l.split(/\s+/));
}

kernelTest("filetop -C -p PID: each file's reads, writes and Kbytes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bpftk-filetop-" });
  const tools: ToolProcess[] = [];
  try {
    const work = new PausedWorkload("python3", [
      "-c",
      WORKLOAD,
      `${dir}/ft_marker_a`,
      `${dir}/ft_marker_b`,
    ]);
    await work.waitForOutput(/^ready$/m);
    const P = String(work.pid);
    for (
      const args of [
        ["-C", "-p", P],
        ["-C", "-a", "-p", P],
        ["-C", "-s", "rbytes", "-r", "1", "-p", P],
        ["--json", "-p", P],
      ]
    ) tools.push(new ToolProcess("filetop", [...args, "60"]));
    await waitFor(async () => (await ourPrograms()) >= tools.length, 20_000, "filetop attached");
    const done = await work.run();
    assertEquals(done.code, 0, done.stderr);
    const outs = await Promise.all(tools.map((t) => t.stop()));
    for (const o of outs) assertEquals(o.code, 0, o.stderr);
    const [plain, all, sorted, json] = outs;

    const tid = P; // one thread
    const a = [tid, "python3", "7", "10", "6", "40", "R", "ft_marker_a"];
    const b = [tid, "python3", "3", "0", "6", "0", "R", "ft_marker_b"];
    deepEqual(rows(plain.stdout), [a, b], plain.stdout);
    // -a: the pipe too (type O, 5 writes of 100 bytes), sorted by the sum of the counts.
    // (its stdin and stdout are pipes too: "ready" was read, the PID written)
    const pipes = rows(all.stdout).filter((r) => r[6] === "O").map((r) => r.slice(0, 7));
    assert(
      pipes.some((r) => r.join(" ") === `${tid} python3 0 5 0 0 O`),
      `the pipe's 5 writes: ${all.stdout}`,
    );
    deepEqual(rows(all.stdout).filter((r) => r[6] === "R"), [a, b]);
    // -s rbytes -r 1: the file with the most bytes read (7000 > 6144).
    deepEqual(rows(sorted.stdout), [a]);
    const report = JSON.parse(json.stdout.trim().split("\n").at(-1)!);
    deepEqual(
      report.files.map((f: Record<string, unknown>) => [
        f.file,
        f.reads,
        f.writes,
        f.read_bytes,
        f.write_bytes,
      ]),
      [["ft_marker_a", 7, 10, 7000, 40960], ["ft_marker_b", 3, 0, 6144, 0]],
    );
  } finally {
    for (const t of tools) t.killTree();
    await Deno.remove(dir, { recursive: true });
  }
  await waitFor(async () => (await ourPrograms()) === 0, 5000, "filetop to unload");
});

for (
  const [args, pattern] of [
    [["-s", "size"], /^filetop: invalid sort 'size'/],
    [["-r", "0"], /^filetop: invalid rows '0'/],
    [["-p", "x"], /^filetop: invalid PID 'x'/],
    [["0"], /^filetop: invalid interval '0'/],
  ] as [string[], RegExp][]
) {
  Deno.test(`filetop ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("filetop", args);
    assertEquals(code, 2);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(pattern.test(stderr), stderr);
  });
}
