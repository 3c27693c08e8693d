/**
 * biopattern against a loop device made for the test (direct I/O to its
 * backing file, so its requests are exactly the workload's): N O_DIRECT
 * 4 KiB writes at increasing offsets (each starts where the previous ended:
 * sequential), then N at shuffled offsets 8 KiB apart (none starts where the
 * previous ended: random). libbpf-tools biopattern -d LOOP watches the same
 * writes; /sys/block/LOOP/stat counts them.
 */
import { equal as assertEquals, ok as assert } from "node:assert/strict";
import { ReferenceTool } from "../support/event_tools.ts";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { LoopDevice } from "../support/block_io_workload.ts";
import { runOk } from "../support/process.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";

const N = 200;

/** python3 -c WRITER DEVICE MODE N: N 4 KiB O_DIRECT writes, "seq" or "rnd". */
const WRITER = `
import mmap, os, random, sys
dev, mode, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
fd = os.open(dev, os.O_RDWR | os.O_DIRECT)
buf = mmap.mmap(-1, 4096)
blocks = list(range(n))
if mode == "rnd":
    random.shuffle(blocks)
for b in blocks:
    off = b * 4096 if mode == "seq" else b * 8192
    assert os.pwritev(fd, [buf], off) == 4096
os.close(fd)
`;

function writes(dev: string): number {
  return Number(Deno.readTextFileSync(`/sys/block/${dev}/stat`).trim().split(/\s+/)[4]);
}

/** The DISK line of a report: [disk, %RND, %SEQ, COUNT, KBYTES]. */
function diskLine(stdout: string, disk: string): (string | number)[] | undefined {
  const line = stdout.split("\n").find((l) => l.startsWith(`${disk} `));
  if (!line) return undefined;
  const [name, ...nums] = line.split(/\s+/);
  return [name, ...nums.map(Number)];
}

async function ourPrograms(): Promise<number> {
  return (await loadedProgramNames()).filter((n) => n === "biopattern").length;
}

kernelTest(
  "biopattern -d LOOP: 200 sequential writes 100% SEQ, 200 shuffled 100% RND, as libbpf-tools",
  async () => {
    const loop = await LoopDevice.create(8);
    try {
      for (const mode of ["seq", "rnd"]) {
        const ours = new ToolProcess("biopattern", ["-d", loop.name]);
        const json = new ToolProcess("biopattern", ["--json", "-d", loop.name]);
        const ref = new ReferenceTool("/usr/sbin/biopattern", ["-d", loop.name]);
        try {
          await ours.waitForOutput(/KBYTES/);
          await ref.waitForOutput(/KBYTES/);
          await waitFor(async () => (await ourPrograms()) >= 2, 15_000, "biopattern attached");
          const before = writes(loop.name);
          await runOk("python3", ["-c", WRITER, loop.path, mode, String(N)]);
          assertEquals(writes(loop.name) - before, N, "the loop device saw other writes");
        } catch (e) {
          for (const p of [ours, json, ref]) p.killTree();
          throw e;
        }
        const [o, j, r] = await Promise.all([ours.stop(), json.stop(), ref.stop()]);
        for (const x of [o, j, r]) assertEquals(x.code, 0, x.stderr);
        assertEquals(
          o.stdout.split("\n")[1],
          "DISK     %RND  %SEQ    COUNT     KBYTES",
          o.stdout,
        );
        // The first request only sets where the next must start: N - 1 compared.
        const want = mode === "seq"
          ? [loop.name, 0, 100, N - 1, (N - 1) * 4]
          : [loop.name, 100, 0, N - 1, (N - 1) * 4];
        assertEquals(JSON.stringify(diskLine(o.stdout, loop.name)), JSON.stringify(want));
        // libbpf-tools biopattern, same window: the same line, byte for byte.
        const line = (s: string) => s.split("\n").find((l) => l.startsWith(`${loop.name} `));
        assertEquals(line(o.stdout), line(r.stdout), r.stdout);
        const report = JSON.parse(j.stdout.trim().split("\n").at(-1)!);
        const disk = report.disks.find((d: { disk: string }) => d.disk === loop.name);
        assertEquals(disk.count, N - 1);
        assertEquals(disk.bytes, (N - 1) * 4096);
        assertEquals(mode === "seq" ? disk.sequential : disk.random, N - 1);
      }
    } finally {
      await loop.remove();
    }
    await waitFor(async () => (await ourPrograms()) === 0, 3000, "biopattern to unload");
  },
);

kernelTest("biopattern 1 2: two interval reports, then exit 0", async () => {
  const t0 = Date.now();
  const { code, stdout, stderr } = await runToolOnce("biopattern", ["-T", "1", "2"]);
  assertEquals(code, 0, stderr);
  assertEquals(stdout.split("\n")[1], "TIME      DISK     %RND  %SEQ    COUNT     KBYTES");
  assert(Date.now() - t0 < 10_000);
});

for (
  const [args, pattern] of [
    [["-d", "nosuchdisk"], /^biopattern: /],
    [["0"], /^biopattern: invalid interval '0'/],
    [["-x"], /^biopattern: unknown option '-x'/],
  ] as [string[], RegExp][]
) {
  Deno.test(`biopattern ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("biopattern", args);
    assertEquals(code, 2);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(pattern.test(stderr), stderr);
  });
}
