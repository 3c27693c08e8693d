/**
 * xfsdist, ext4dist, btrfsdist against a workload whose operations are
 * known: on a loop file system made for the test, one process opens its
 * file OPENS times, writes WRITES blocks, fsyncs FSYNCS times and reads
 * READS blocks (and touches a file elsewhere, on /dev/shm, which must not
 * count). Each operation's histogram must hold exactly that many.
 * libbpf-tools fsdist needs kprobes or fentry on the file system's
 * functions: it cannot run here, so there is no cross-check in the window.
 */
import { deepEqual, equal as assertEquals, ok as assert } from "node:assert/strict";
import { PausedWorkload } from "../support/event_tools.ts";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { parseLog2Hists, total } from "../support/log2_hist_parse.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";
import { makeLoopFs } from "./fsslower_loopfs.ts";

const OPENS = 5, WRITES = 20, FSYNCS = 3, READS = 30;

const WORKLOAD = `
import os, sys
target, other = sys.argv[1], sys.argv[2]
print("ready", flush=True)  # python's own start-up reads (modules on the root fs) are over
sys.stdin.readline()
for _ in range(${OPENS}):
    fd = os.open(target, os.O_RDWR | os.O_CREAT, 0o644)
    os.close(fd)
fd = os.open(other, os.O_RDWR | os.O_CREAT, 0o644)
os.write(fd, b"x" * 4096); os.fsync(fd); os.pread(fd, 10, 0); os.close(fd)
fd = os.open(target, os.O_RDWR | os.O_CREAT, 0o644)
for _ in range(${WRITES}):
    os.write(fd, b"y" * 4096)
for _ in range(${FSYNCS}):
    os.fsync(fd)
for i in range(${READS}):
    os.pread(fd, 4096, i * 4096 % (${WRITES} * 4096))
os.close(fd)
`;

async function ourPrograms(): Promise<number> {
  return (await loadedProgramNames()).filter((n) => n.startsWith("fss_")).length;
}

/** The counts of each operation's table: {read: n, ...}, in the order printed. */
function perOperation(stdout: string): [string, number][] {
  const names = [...stdout.matchAll(/^operation = '(\w+)'$/gm)].map((m) => m[1]);
  const hists = parseLog2Hists(stdout);
  assertEquals(hists.length, names.length, stdout);
  return names.map((n, i) => [n, total(hists[i])]);
}

for (const type of ["xfs", "ext4", "btrfs"] as const) {
  kernelTest(`${type}dist: each operation of a known workload counted once`, async () => {
    const fs = await makeLoopFs(type);
    const other = `/dev/shm/fsdist_other_${Deno.pid}`;
    const tools: ToolProcess[] = [];
    try {
      const work = new PausedWorkload("python3", ["-c", WORKLOAD, `${fs.mnt}/target`, other]);
      const P = String(work.pid);
      await work.waitForOutput(/^ready$/m);
      const before = await ourPrograms();
      tools.push(new ToolProcess(`${type}dist`, ["-p", P]));
      if (type === "xfs") {
        tools.push(new ToolProcess(`${type}dist`, ["-m", "-p", P]));
        tools.push(new ToolProcess(`${type}dist`, ["--json", "-p", P]));
      }
      await waitFor(
        async () => (await ourPrograms()) >= before + 2 * tools.length,
        20_000,
        "the tools to attach",
      );
      const done = await work.run();
      assertEquals(done.code, 0, done.stderr);
      const outs = await Promise.all(tools.map((t) => t.stop()));
      for (const o of outs) assertEquals(o.code, 0, o.stderr);
      const [text, ms, json] = outs;

      assertEquals(
        text.stdout.split("\n")[0],
        `Tracing ${type} operation latency... Hit Ctrl-C to end.`,
      );
      // libbpf-tools' order and counts: read, write, open, fsync.
      const want: [string, number][] = [
        ["read", READS],
        ["write", WRITES],
        ["open", OPENS + 1],
        ["fsync", FSYNCS],
      ];
      deepEqual(perOperation(text.stdout), want, text.stdout);
      assert(/^ +usecs +: count +distribution$/m.test(text.stdout), text.stdout);
      if (type === "xfs") {
        deepEqual(perOperation(ms.stdout), want, ms.stdout);
        assert(/^ +msecs +: count +distribution$/m.test(ms.stdout), ms.stdout);
        const report = JSON.parse(json.stdout.trim().split("\n").at(-1)!);
        assertEquals(report.unit, "usecs");
        deepEqual(
          report.histograms.map((h: { operation: string; buckets: { count: number }[] }) => [
            h.operation,
            h.buckets.reduce((n, b) => n + b.count, 0),
          ]),
          want,
        );
      }
    } finally {
      for (const t of tools) t.killTree();
      await Deno.remove(other).catch(() => {});
      await fs.cleanup();
    }
    await waitFor(async () => (await ourPrograms()) === 0, 5000, "fsdist to unload");
  });
}

for (
  const [args, pattern] of [
    [["-p", "x"], /^xfsdist: invalid PID 'x'/],
    [["0"], /^xfsdist: invalid interval '0'/],
    [["-j"], /^xfsdist: unknown option '-j'/],
  ] as [string[], RegExp][]
) {
  Deno.test(`xfsdist ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("xfsdist", args);
    assertEquals(code, 2);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(pattern.test(stderr), stderr);
  });
}
