/**
 * xfsslower / ext4slower / btrfsslower against file operations whose sizes,
 * offsets and order are known (tests/tools/fsslower_workload.py), on file
 * systems made for the test on loop devices:
 * - `0` shows every open, read, write and fsync of the workload's file,
 *   exactly and in order, and nothing of the same operations on another
 *   file system (/dev/shm), of an O_PATH open, or of a directory open;
 * - CSV (-j) and --json carry the same operations as the text (run side by
 *   side on the same workload: sizes and offsets equal, latencies within
 *   LATENCY_TOLERANCE_MS, each tool timing the calls itself);
 * - a threshold keeps the slow fsync of 64 MiB of dirty data, with the
 *   latency the workload measured around its own call, and drops the
 *   cached 4 KiB reads;
 * - -p shows one process of two doing the same work;
 * - nothing stays loaded; bad flags exit 2; zfsslower without ZFS, or
 *   xfsslower with no xfs mounted, warns once and traces (an xfs mounted
 *   afterwards is seen).
 * There is no reference to cross-check with: libbpf-tools fsslower needs
 * kprobes or fentry, which this kernel lacks.
 */
import {
  deepEqual as assertDeepEquals,
  equal as assertEquals,
  ok as assert,
} from "node:assert/strict";
import { bpftoolJson, kernelTest, waitFor } from "../support/kernel.ts";
import { PausedWorkload } from "../support/event_tools.ts";
import { REPO_ROOT, runToolOnce, ToolProcess } from "../support/tool_process.ts";
import { runToolWithFault } from "../support/fault_after_attach.ts";
import { makeLoopFs } from "./fsslower_loopfs.ts";
import { fsRegistered } from "../../lib/fsslower/filesystems.ts";

const WORKLOAD = `${REPO_ROOT}tests/tools/fsslower_workload.py`;
/** Two tools timing the same syscall differ by their programs' run times, not more. */
const LATENCY_TOLERANCE_MS = 0.5;

/** One operation as the tests compare them. */
interface Op {
  pid: number;
  type: string;
  /** The syscall's return value: bytes, or an fsync's 0 (as bcc shows it). */
  bytes: string;
  /** When it ended, in microseconds of the monotonic clock (CSV ENDTIME_us, JSON end_ns). */
  endUs?: number;
  /** Byte offset (CSV, JSON), or KiB (text). */
  offset: number;
  latencyMs: number;
  file: string;
}

/** The workload's `ops` sequence on its target file: type, bytes, byte offset. */
const EXPECTED_OPS: [string, string, number][] = [
  ["O", "0", 0],
  ["W", "4096", 0],
  ["W", "10000", 4096],
  ["W", "3000", 65536], // pwrite64
  ["W", "300", 14096], // writev at the file position
  ["W", "50", 70000], // pwritev
  ["F", "0", 0], // fsync
  ["F", "0", 0], // fdatasync
  ["O", "0", 0],
  ["R", "5000", 0],
  ["R", "2048", 65536], // pread64
  ["R", "65050", 5000], // the rest of the 70050 bytes
  ["R", "0", 70050], // at the end
  ["R", "10", 100], // preadv
  ["R", "20", 300], // preadv2 at the file position
];

function parseText(stdout: string): Op[] {
  const lines = stdout.split("\n");
  assert(/^Tracing \w+ operations/.test(lines[0]), stdout);
  assertEquals(lines[1], "TIME     COMM           PID    T BYTES   OFF_KB   LAT(ms) FILENAME");
  return lines.slice(2).filter((l) => l).map((line) => {
    assert(/^\d\d:\d\d:\d\d /.test(line), line);
    const [pid, type, bytes, offKb, lat, ...file] = line.slice(24).split(/ +/);
    return {
      pid: Number(pid),
      type,
      bytes,
      offset: Number(offKb),
      latencyMs: Number(lat),
      file: file.join(" "),
    };
  });
}

function parseCsv(stdout: string): Op[] {
  const lines = stdout.split("\n");
  assertEquals(lines[0], "ENDTIME_us,TASK,PID,TYPE,BYTES,OFFSET_b,LATENCY_us,FILE");
  return lines.slice(1).filter((l) => l).map((line) => {
    const [end, _task, pid, type, bytes, offset, latencyUs, ...file] = line.split(",");
    return {
      endUs: Number(end),
      pid: Number(pid),
      type,
      bytes,
      offset: Number(offset),
      latencyMs: Number(latencyUs) / 1000,
      file: file.join(","),
    };
  });
}

function parseJson(stdout: string): Op[] {
  return stdout.split("\n").filter((l) => l).map((line) => {
    const e = JSON.parse(line);
    return {
      pid: e.pid,
      type: e.type,
      endUs: e.end_ns / 1000,
      bytes: String(e.bytes),
      offset: e.offset,
      latencyMs: e.latency_us / 1000,
      file: e.file,
    };
  });
}

/** IDs of the fsslower programs loaded now (any process's). */
async function fssProgramIds(): Promise<Set<number>> {
  const progs = await bpftoolJson<{ id: number; name?: string }[]>("prog", "show");
  return new Set(progs.filter((p) => p.name?.startsWith("fss_")).map((p) => p.id));
}

/** Runs the `ops` workload under the given tools; returns their output. */
async function traceOps(
  tool: string,
  target: string,
  other: string,
  variants: string[][],
  env?: Record<string, string>,
): Promise<{ pid: number; outputs: string[] }> {
  const workload = new PausedWorkload("python3", [WORKLOAD, "ops", target, other]);
  const before = await fssProgramIds();
  const tools = variants.map((args) =>
    new ToolProcess(tool, [...args, "-p", String(workload.pid)], { env })
  );
  let ours: number[] = [];
  try {
    // Other tests may load programs meanwhile: ours are the ones that appear with our tools.
    await waitFor(
      async () => {
        ours = [...await fssProgramIds()].filter((id) => !before.has(id));
        return ours.length >= 2 * tools.length;
      },
      15000,
      "the tools' programs",
    );
    await new Promise((r) => setTimeout(r, 200)); // the last link is made right after load
    const done = await workload.run();
    assertEquals(done.code, 0, done.stderr);
  } finally {
    for (const t of tools) t.kill("SIGINT");
  }
  const outputs: string[] = [];
  for (const t of tools) {
    const r = await t.finish();
    assertEquals(r.code, 0, r.stderr);
    outputs.push(r.stdout);
  }
  const after = await fssProgramIds();
  assertDeepEquals(ours.filter((id) => after.has(id)), [], "programs left loaded");
  return { pid: workload.pid, outputs };
}

/**
 * The workload's operations on its file are exactly EXPECTED_OPS. On ext4 the
 * workload's own start (Python reading its modules from the root ext4) may
 * overlap the tool's start, so only operations on the workload's file count.
 */
function assertExpectedOps(all: Op[], pid: number, file: string, offsetUnit: 1 | 1024): Op[] {
  const ops = all.filter((o) => o.file === file);
  assertDeepEquals(
    ops.map((o) => [o.pid, o.type, o.bytes, o.offset, o.file]),
    EXPECTED_OPS.map(([type, bytes, offset]) => [
      pid,
      type,
      bytes,
      Math.trunc(offset / offsetUnit),
      file,
    ]),
  );
  for (const o of ops) assert(o.latencyMs >= 0 && o.latencyMs < 1000, `latency ${o.latencyMs}`);
  return ops;
}

for (const type of ["xfs", "ext4", "btrfs"] as const) {
  kernelTest(
    `${type}slower 0: every operation of a known workload, nothing from elsewhere`,
    async () => {
      const fs = await makeLoopFs(type);
      const tag = `${type}_${Deno.pid}`;
      const target = `${fs.mnt}/fss_target_${tag}`, other = `/dev/shm/fss_other_${tag}`;
      try {
        // Text, CSV and JSON side by side on xfs; text alone on the others, btrfs through
        // a perf buffer (the fallback for kernels before 5.8) instead of the ring buffer.
        const variants = type === "xfs" ? [["0"], ["-j", "0"], ["--json", "0"]] : [["0"]];
        const env = type === "btrfs" ? { BPFTK_EVENT_BUFFER: "perf" } : undefined;
        const { pid, outputs } = await traceOps(`${type}slower`, target, other, variants, env);
        const name = `fss_target_${tag}`;
        assert(!outputs.join("").includes("fss_other_"), "an operation on /dev/shm was shown");
        // bcc's banner: "Tracing XFS operations" (ext4, btrfs), no threshold at 0.
        const title = { xfs: "XFS", ext4: "ext4", btrfs: "btrfs" }[type];
        assertEquals(outputs[0].split("\n")[0], `Tracing ${title} operations`);
        const all = parseText(outputs[0]);
        // Nothing else of the workload is on xfs or btrfs (O_PATH and directory opens included).
        if (type !== "ext4") assertDeepEquals(all.filter((o) => o.file !== name), []);
        const text = assertExpectedOps(all, pid, name, 1024);
        if (type === "xfs") {
          const csv = assertExpectedOps(parseCsv(outputs[1]), pid, name, 1);
          const json = assertExpectedOps(parseJson(outputs[2]), pid, name, 1);
          csv.forEach((c, i) => {
            assert(Math.abs(c.latencyMs - json[i].latencyMs) <= LATENCY_TOLERANCE_MS);
            assert(Math.abs(c.latencyMs - text[i].latencyMs) <= LATENCY_TOLERANCE_MS);
            // ENDTIME_us: the same end, in microseconds (JSON has nanoseconds).
            assert(Math.abs(c.endUs! - json[i].endUs!) <= LATENCY_TOLERANCE_MS * 1000);
          });
        }
      } finally {
        await Deno.remove(other).catch(() => {});
        await fs.cleanup();
      }
    },
  );
}

kernelTest(
  "xfsslower 10: the slow fsync of 64 MiB is shown with its latency, cached reads not",
  async () => {
    const fs = await makeLoopFs("xfs");
    const target = `${fs.mnt}/fss_big_${Deno.pid}`;
    try {
      const workload = new PausedWorkload("python3", [WORKLOAD, "slow", target]);
      const tool = new ToolProcess("xfsslower", ["-p", String(workload.pid), "10"]);
      let measured: { fsync_ms: number; max_read_ms: number; reads_over_10ms: number };
      try {
        await tool.waitForOutput(/^TIME /m);
        const done = await workload.run();
        assertEquals(done.code, 0, done.stderr);
        measured = JSON.parse(done.stdout);
      } finally {
        tool.kill("SIGINT");
      }
      const r = await tool.finish();
      assertEquals(r.code, 0, r.stderr);
      assert(
        /^Tracing XFS operations slower than 10 ms$/m.test(r.stdout),
      );
      assert(measured.fsync_ms > 15, `fsync took only ${measured.fsync_ms} ms: the premise fails`);
      const ops = parseText(r.stdout);
      for (const o of ops) {
        assert(o.latencyMs > 10, `shown under the threshold: ${JSON.stringify(o)}`);
      }
      // Cached reads are fast: none is shown, unless the workload itself saw it take
      // over 10 ms (a busy machine preempting it), and then at most those.
      const reads = ops.filter((o) => o.type === "R");
      assert(
        reads.length <= measured.reads_over_10ms,
        `${reads.length} reads shown, the workload saw ${measured.reads_over_10ms} over 10 ms ` +
          `(slowest ${measured.max_read_ms} ms)`,
      );
      const fsyncs = ops.filter((o) => o.type === "F");
      assertEquals(fsyncs.length, 1, r.stdout);
      // The syscall's own time, seen from inside: never more than measured around the call,
      // and less by no more than 10% + 1 ms (the workload may be preempted around it).
      const f = fsyncs[0];
      assert(f.latencyMs <= measured.fsync_ms + 0.01, `${f.latencyMs} vs ${measured.fsync_ms}`);
      assert(f.latencyMs >= measured.fsync_ms * 0.9 - 1, `${f.latencyMs} vs ${measured.fsync_ms}`);
      assertEquals(f.file, `fss_big_${Deno.pid}`);
      // Writes shown are the slow ones of the 64 (page cache throttling), at 1 MiB steps.
      for (const o of ops.filter((o) => o.type === "W")) {
        assertEquals(o.bytes, String(1 << 20));
        assertEquals(o.offset % 1024, 0);
      }
    } finally {
      await fs.cleanup();
    }
  },
);

kernelTest("ext4slower -p: one process of two doing the same work", async () => {
  const fs = await makeLoopFs("ext4");
  const a = `${fs.mnt}/fss_a`, b = `${fs.mnt}/fss_b`;
  try {
    const wa = new PausedWorkload("python3", [WORKLOAD, "ops", a, "/dev/shm/fss_pa"]);
    const wb = new PausedWorkload("python3", [WORKLOAD, "ops", b, "/dev/shm/fss_pb"]);
    const tool = new ToolProcess("ext4slower", ["-p", String(wa.pid), "0"]);
    try {
      await tool.waitForOutput(/^TIME /m);
      const [ra, rb] = await Promise.all([wa.run(), wb.run()]);
      assertEquals(ra.code + rb.code, 0, ra.stderr + rb.stderr);
    } finally {
      tool.kill("SIGINT");
    }
    const r = await tool.finish();
    assertEquals(r.code, 0, r.stderr);
    const ops = parseText(r.stdout);
    assertDeepEquals(ops.filter((o) => o.pid !== wa.pid), [], "another process was shown");
    assertExpectedOps(ops, wa.pid, "fss_a", 1024);
  } finally {
    for (const f of ["/dev/shm/fss_pa", "/dev/shm/fss_pb"]) await Deno.remove(f).catch(() => {});
    await fs.cleanup();
  }
});

kernelTest(
  "fsslower tools: bad flags exit 2, -d, faults exit 1, zfsslower without ZFS",
  async () => {
    for (
      const args of [["-x"], ["abc"], ["-1"], ["1", "2"], ["-p", "0"], ["-d", "0"], [
        "-j",
        "--json",
      ]]
    ) {
      const r = await runToolOnce("xfsslower", args);
      assertEquals(r.code, 2, `${args}: ${r.stderr}`);
      assertEquals(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert(r.stderr.startsWith("xfsslower: "), r.stderr);
    }
    // -d: stops by itself, after saying for how long it traces.
    const t0 = performance.now();
    const timed = await runToolOnce("xfsslower", ["-d", "1", "1000"]);
    assertEquals(timed.code, 0, timed.stderr);
    assert(performance.now() - t0 < 5000, "-d 1 took more than 5 s");
    assertEquals(
      timed.stdout.split("\n")[0],
      "Tracing XFS operations slower than 1000 ms for 1 secs.",
    );
    // An error with everything attached: one line, exit 1, nothing left loaded.
    const before = await fssProgramIds();
    const fault = await runToolWithFault("ext4slower", ["0"]);
    assertEquals(fault.code, 1, fault.stderr);
    assertEquals(fault.stderr, "ext4slower: injected fault after attach (test seam)\n");
    const after = await fssProgramIds();
    assertDeepEquals([...after].filter((id) => !before.has(id)), [], "programs left loaded");
    const help = await runToolOnce("btrfsslower", ["-h"]);
    assertEquals(help.code, 0);
    assert(help.stdout.includes("USAGE: btrfsslower [-h] [-j] [-p PID] [-d SECS] [min_ms]"));
    // Without ZFS: one warning, and it traces (the module may be loaded and mounted later).
    const zfs = await runToolOnce("zfsslower", ["-d", "1"]);
    if (fsRegistered("zfs")) return;
    assertEquals(zfs.code, 0, zfs.stderr);
    assertEquals(
      zfs.stderr,
      "warning: zfs is not available in this kernel (not in /proc/filesystems: " +
        "is the zfs module loaded?): nothing may match\n",
    );
    assertEquals(zfs.stdout.split("\n")[0], "Tracing ZFS operations slower than 10 ms for 1 secs.");
  },
);

kernelTest(
  "xfsslower with no xfs mounted: one warning, then it traces an xfs mounted later",
  async () => {
    if (mountedTypes().includes("xfs")) return; // the premise does not hold here
    const tag = `late_${Deno.pid}`;
    const other = `/dev/shm/fss_other_${tag}`;
    let workload: PausedWorkload | undefined;
    const tool = new ToolProcess("xfsslower", ["0"]);
    try {
      await tool.waitForOutput(/^TIME /m);
      const fs = await makeLoopFs("xfs");
      try {
        workload = new PausedWorkload("python3", [WORKLOAD, "ops", `${fs.mnt}/fss_${tag}`, other]);
        const done = await workload.run();
        assertEquals(done.code, 0, done.stderr);
        await new Promise((r) => setTimeout(r, 300)); // one more drain of the event loop
      } finally {
        tool.kill("SIGINT");
        await fs.cleanup();
      }
    } finally {
      await Deno.remove(other).catch(() => {});
    }
    const r = await tool.finish();
    assertEquals(r.code, 0, r.stderr);
    assertEquals(r.stderr, "warning: no xfs file system is mounted now: nothing may match\n");
    assertExpectedOps(parseText(r.stdout), workload!.pid, `fss_${tag}`, 1024);
  },
);

/** File system types mounted now (/proc/self/mounts). */
function mountedTypes(): string[] {
  return Deno.readTextFileSync("/proc/self/mounts").split("\n").map((l) => l.split(" ")[2]);
}
