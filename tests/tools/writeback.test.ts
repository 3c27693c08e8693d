/**
 * writeback against write-back whose size is known: 8 MiB written (buffered)
 * to a file on a fresh ext4 loop file system, then syncfs(2): the flusher
 * must write those 2048 pages to the loop device's bdi, for reason "sync".
 * The tool's lines for that device must add up to 2048 pages (up to 64 more:
 * an inode or a directory block), at least one of them "sync".
 *
 * Cross-check: bpftrace's writeback.bt, run in the same window, pairs the
 * same tracepoints: it must print as many passes for the device (its PAGES
 * column is the low 16 bits of the pages left to write, so not compared).
 */
import { equal as assertEquals, ok as assert } from "node:assert/strict";
import { waitForPrograms } from "../support/event_tools.ts";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { runOk, Spawned } from "../support/process.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";
import { makeLoopFs } from "./fsslower_loopfs.ts";

const MIB = 8;

const WRITER = `
import ctypes, os, sys
fd = os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY, 0o644)
os.write(fd, b"x" * (${MIB} << 20))
assert ctypes.CDLL(None).syncfs(fd) == 0
`;

kernelTest(
  "writeback: 8 MiB then syncfs on an ext4 loop fs -> 2048 pages to its bdi, as many passes as writeback.bt",
  async () => {
    const fs = await makeLoopFs("ext4");
    const tools: Spawned[] = [];
    try {
      const source = (await runOk("findmnt", ["-no", "SOURCE", fs.mnt])).trim();
      const bdi = Deno.readTextFileSync(`/sys/class/block/${source.replace("/dev/", "")}/dev`)
        .trim();
      const before = (await loadedProgramNames()).filter((n) => n === "writeback_done").length;
      const ours = new ToolProcess("writeback", []);
      const json = new ToolProcess("writeback", ["--json"]);
      const bt = new Spawned("bpftrace", ["/usr/sbin/writeback.bt"]);
      tools.push(ours, json, bt);
      await ours.waitForOutput(/REASON +ms$/m);
      await bt.waitForOutput(/REASON +ms$/m);
      await waitForPrograms("writeback_done", before + 2);
      await runOk("python3", ["-c", WRITER, `${fs.mnt}/data`]);
      await new Promise((r) => setTimeout(r, 500));
      const [o, j, b] = await Promise.all(tools.map((t) => t.stop()));
      assertEquals(o.code, 0, o.stderr);
      assertEquals(j.code, 0, j.stderr);

      assertEquals(
        o.stdout.split("\n").slice(0, 2).join("\n"),
        "Tracing writeback... Hit Ctrl-C to end.\nTIME      DEVICE   PAGES    REASON           ms",
      );
      const passes = o.stdout.split("\n").slice(2).filter((l) => l !== "").map((l) => {
        const m = l.match(/^\d\d:\d\d:\d\d {2}(\S+) +(-?\d+) +(\S+) +(\d+\.\d{3})$/);
        assert(m, `bad line '${l}'`);
        return { device: m[1], pages: Number(m[2]), reason: m[3], ms: Number(m[4]) };
      }).filter((x) => x.device === bdi);
      const pages = passes.reduce((n, x) => n + x.pages, 0);
      const expected = (MIB << 20) / 4096;
      assert(pages >= expected && pages <= expected + 64, `${pages} pages to ${bdi}:\n${o.stdout}`);
      assert(passes.some((x) => x.reason === "sync" && x.pages > 0), o.stdout);

      const objs = j.stdout.trim().split("\n").map((l) => JSON.parse(l))
        .filter((x) => x.device === bdi);
      assertEquals(objs.reduce((n, x) => n + x.pages, 0), pages);

      const theirs = b.stdout.split("\n").filter((l) => new RegExp(`^\\S+  ${bdi} `).test(l));
      assertEquals(theirs.length, passes.length, `writeback.bt:\n${b.stdout}\nours:\n${o.stdout}`);
    } finally {
      for (const t of tools) t.killTree();
      await Promise.allSettled(tools.map((t) => t.wait()));
      await fs.cleanup();
    }
  },
  { commands: ["bpftrace", "mkfs.ext4", "findmnt"] },
);

Deno.test("writeback 1: usage error, one line, exit 2", async () => {
  const { code, stdout, stderr } = await runToolOnce("writeback", ["1"]);
  assertEquals(code, 2, stderr);
  assertEquals(stdout, "");
  assert(/^writeback: unrecognized positional argument: '1'/.test(stderr), stderr);
});

kernelTest("writeback: SIGINT unloads its programs", async () => {
  const p = new ToolProcess("writeback", []);
  await p.waitForOutput(/REASON +ms$/m);
  const { code, stderr } = await p.stop();
  assertEquals(code, 0, stderr);
  await waitFor(
    async () => !(await loadedProgramNames()).includes("writeback_done"),
    3000,
    "writeback to unload",
  );
});
