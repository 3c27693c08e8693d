/**
 * biosnoop against block I/O whose truth is known: 400 O_DIRECT writes
 * (300 x 4 KiB then 100 x 64 KiB, at consecutive offsets from 0) on a loop
 * device made by the test, each one request, by a process named bioworkload
 * inside a cgroup made by the test. Every request must be one line, exactly:
 * its disk, its comm and PID, a write, its sector (offset / 512) and size.
 *
 * The reference: libbpf-tools biosnoop cannot load here (it needs fentry on
 * blk_account_io_start), nor can bpftrace's biosnoop.bt (kprobes); so the
 * cross-check is the kernel's own accounting of the same device in the same
 * window, /sys/block/DEV/stat (write I/Os and sectors completed).
 */
import {
  deepEqual as assertDeepEqual,
  equal as assertEquals,
  ok as assert,
} from "node:assert/strict";
import { type IoBatch, LoopDevice, runBlockWorkload } from "../support/block_io_workload.ts";
import { waitForPrograms } from "../support/event_tools.ts";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";

const BATCHES: IoBatch[] = [
  { op: "write", bytes: 4096, count: 300 },
  { op: "write", bytes: 65536, count: 100 },
];
const N = 400;
const COMM = "bioworkload";
const HEADER = /^TIME\(s\) +COMM +PID +DISK +T +SECTOR +BYTES +QUE\(ms\) +LAT\(ms\)$/m;

async function ourPrograms(): Promise<number> {
  return (await loadedProgramNames()).filter((n) => n.startsWith("biosnoop_")).length;
}

/** The requests the workload makes: sector and size of each, in order. */
function expectedRequests(): string[] {
  const out: string[] = [];
  let offset = 0;
  for (const b of BATCHES) {
    for (let i = 0; i < b.count; i++, offset += b.bytes) out.push(`${offset / 512}:${b.bytes}`);
  }
  return out;
}

/** write I/Os and sectors written so far, from /sys/block/DEV/stat. */
function writeStats(dev: string): { ios: number; sectors: number } {
  const f = Deno.readTextFileSync(`/sys/block/${dev}/stat`).trim().split(/\s+/).map(Number);
  return { ios: f[4], sectors: f[6] };
}

interface Line {
  time: string;
  comm: string;
  pid: number;
  disk: string;
  t: string;
  sector: number;
  bytes: number;
  que?: number;
  lat: number;
}

function parseLines(stdout: string, queued: boolean): Line[] {
  return stdout.trim().split("\n").slice(1).filter((l) => l !== "").map((l) => {
    const f = l.trim().split(/\s+/);
    assertEquals(f.length, queued ? 9 : 8, `bad line '${l}'`);
    return {
      time: f[0],
      comm: f[1],
      pid: Number(f[2]),
      disk: f[3],
      t: f[4],
      sector: Number(f[5]),
      bytes: Number(f[6]),
      que: queued ? Number(f[7]) : undefined,
      lat: Number(f.at(-1)),
    };
  });
}

async function removeDir(dir: string): Promise<void> {
  await waitFor(
    () => {
      try {
        Deno.removeSync(dir);
        return true;
      } catch {
        return false;
      }
    },
    3000,
    `removal of ${dir}`,
  );
}

kernelTest(
  "biosnoop -Q -d LOOP: 400 writes, 400 lines with sector and size; -c, -t, --json agree; /sys/block stat agrees",
  async () => {
    assertEquals(await ourPrograms(), 0, "biosnoop_ programs loaded before the test");
    const root = "/sys/fs/cgroup/unified";
    const inside = `${root}/bpftk-biosnoop-in`, empty = `${root}/bpftk-biosnoop-empty`;
    for (const dir of [inside, empty]) Deno.mkdirSync(dir, { recursive: true });
    // With an I/O scheduler every request is inserted (queued) before it is issued.
    const loop = await LoopDevice.create(64, "mq-deadline");
    const tools: ToolProcess[] = [];
    try {
      const d = ["-d", loop.name];
      const queued = new ToolProcess("biosnoop", [...d, "-Q"]);
      const inCg = new ToolProcess("biosnoop", [...d, "-c", inside]);
      const emptyCg = new ToolProcess("biosnoop", [...d, "-c", empty]);
      const stamped = new ToolProcess("biosnoop", [...d, "-t"]);
      const json = new ToolProcess("biosnoop", [...d, "--json"]);
      tools.push(queued, inCg, emptyCg, stamped, json);
      await waitForPrograms("biosnoop_done", 5); // --json prints no header
      for (const t of [queued, inCg, emptyCg, stamped]) await t.waitForOutput(/LAT\(ms\)/);

      const stat0 = writeStats(loop.name);
      const t0 = Date.now();
      await runBlockWorkload(loop, BATCHES, { comm: COMM, cgroup: inside });
      const ms = Date.now() - t0;
      const stat1 = writeStats(loop.name);
      // Lines are printed as the ring buffer is read: wait for the last one.
      await queued.waitForOutput(new RegExp(`(?:.*\\n){${N + 1}}`), 15_000);

      const outs = await Promise.all(tools.map((t) => t.stop()));
      for (const o of outs) assertEquals(o.code, 0, o.stderr);
      const [q, c, e, s, j] = outs.map((o) => o.stdout);

      // The kernel's own count of this device's writes in the window.
      assertEquals(stat1.ios - stat0.ios, N, "the loop device saw other writes");
      assertEquals(stat1.sectors - stat0.sectors, (300 * 4096 + 100 * 65536) / 512);

      assert(HEADER.test(q.split("\n")[0]), q.split("\n")[0]);
      const lines = parseLines(q, true);
      assertEquals(lines.length, N, q);
      const pid = lines[0].pid;
      for (const l of lines) {
        assertEquals(l.disk, loop.name);
        assertEquals(l.comm, COMM);
        assertEquals(l.pid, pid);
        assert(/^W/.test(l.t), `not a write: ${l.t}`);
        assert(l.lat >= 0 && l.lat <= ms, `latency ${l.lat} ms outside the run's ${ms} ms`);
        assert(l.que! >= 0 && l.que! <= ms, `queued ${l.que} ms`);
      }
      assertDeepEqual(lines.map((l) => `${l.sector}:${l.bytes}`).sort(), expectedRequests().sort());
      // TIME(s): from the first request, non-decreasing, within the run.
      const times = lines.map((l) => Number(l.time));
      assertEquals(times[0], 0);
      assert(times.every((t, i) => i === 0 || t >= times[i - 1]), "TIME(s) goes back");
      assert(times.at(-1)! * 1000 <= ms + 1, `${times.at(-1)} s for a ${ms} ms run`);

      // -c: the same 400 from the cgroup the workload ran in, none from an empty one.
      const cg = parseLines(c, false);
      assertEquals(cg.length, N, c);
      assertDeepEqual(cg.map((l) => `${l.sector}:${l.bytes}`).sort(), expectedRequests().sort());
      assertEquals(parseLines(e, false).length, 0, e);

      // -t: wall-clock time of day with milliseconds, TIMESTAMP heading.
      assert(/^TIMESTAMP +COMM /.test(s), s.slice(0, 200));
      const stampedLines = parseLines(s, false);
      assertEquals(stampedLines.length, N);
      assert(stampedLines.every((l) => /^\d\d:\d\d:\d\d\.\d{3}$/.test(l.time)), s.slice(0, 400));

      // --json: one object per request, the same requests, numbers as numbers.
      const objs = j.trim().split("\n").map((l) => JSON.parse(l));
      assertEquals(objs.length, N);
      for (const x of objs) {
        assertEquals(x.disk, loop.name);
        assertEquals(x.comm, COMM);
        assertEquals(x.pid, pid);
        assertEquals(typeof x.latencyMs, "number");
        assertEquals(x.dev, Deno.readTextFileSync(`/sys/block/${loop.name}/dev`).trim());
      }
      assertDeepEqual(
        objs.map((x) => `${x.sector}:${x.bytes}`).sort(),
        expectedRequests().sort(),
      );
    } finally {
      for (const t of tools) t.killTree();
      await Promise.allSettled(tools.map((t) => t.wait()));
      await loop.remove();
      for (const dir of [inside, empty]) await removeDir(dir);
    }
    await waitFor(async () => (await ourPrograms()) === 0, 3000, "biosnoop_ programs to unload");
  },
  { limitMs: 120_000 },
);

kernelTest("biosnoop DURATION: exits by itself after it, nothing left loaded", async () => {
  const t0 = Date.now();
  const { code, stdout, stderr } = await runToolOnce("biosnoop", ["-m", "1000", "1"]);
  assertEquals(code, 0, stderr);
  assert(Date.now() - t0 < 15_000);
  assert(/^TIME\(s\) +COMM +PID +DISK +T +SECTOR +BYTES +LAT\(ms\)\n/.test(stdout), stdout);
  assert(stdout.split("\n")[0].length < 80);
  await waitFor(async () => (await ourPrograms()) === 0, 3000, "biosnoop_ programs to unload");
});

for (
  const [args, pattern] of [
    [["-d", "nosuchdisk"], /^biosnoop: -d nosuchdisk: no such disk/],
    [["-c", "/nonexistent/cg"], /^biosnoop: -c \/nonexistent\/cg: no such cgroup/],
    [["-m", "-1"], /^biosnoop: invalid latency '-1': negative/],
    [["0"], /^biosnoop: invalid duration '0': must be at least 1/],
    [["1", "2"], /^biosnoop: unrecognized positional argument: '2'/],
    [["-x"], /^biosnoop: unknown option '-x'/],
  ] as [string[], RegExp][]
) {
  Deno.test(`biosnoop ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("biosnoop", args);
    assertEquals(code, 2, stderr);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(pattern.test(stderr), stderr);
  });
}
