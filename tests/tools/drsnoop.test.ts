/**
 * drsnoop against reclaim whose amount is known: a process in a memory
 * cgroup limited to 32 MiB reads a 128 MiB file that is not in the page
 * cache, so its own page cache must be reclaimed, by itself, as it reads:
 * about 96 MiB at least, at most what it brought in. With -M its lines
 * must add up to that many PAGES (4 KiB each), come from its TID, and be no
 * more than the cgroup's failed charges (memory.failcnt: every reclaim
 * follows one).
 *
 * Cross-checks, in the same window: bpftrace counting the same tracepoint
 * for the process must see as many reclaims and pages. Global direct
 * reclaim does not happen here (the machine has memory to spare), so the
 * default mode, and libbpf-tools drsnoop (global reclaim only), print no line
 * for the process.
 */
import { equal as assertEquals, ok as assert } from "node:assert/strict";
import { ReferenceTool, waitForPrograms } from "../support/event_tools.ts";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { runOk, Spawned } from "../support/process.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";

const MEMCG_V1 = "/sys/fs/cgroup/memory";
const LIMIT_MIB = 32;
const FILE_MIB = 128;
const READY = /^TIME +COMM +TID +LAT\(ms\) PAGES$/m;

const READER = `
import os, sys
open("/proc/self/comm", "w").write("drworkload")
print(f"pid {os.getpid()}", flush=True)
sys.stdin.readline()
with open(sys.argv[1], "rb", buffering=0) as f:
    while f.read(1 << 20):
        pass
`;

async function ourPrograms(): Promise<number> {
  return (await loadedProgramNames()).filter((n) => n.startsWith("drsnoop_")).length;
}

function lines(stdout: string, pid: number) {
  return stdout.split("\n").slice(2).filter((l) => l !== "").map((l) => {
    const f = l.trim().split(/\s+/);
    return { comm: f[1], tid: Number(f[2]), ms: Number(f[3]), pages: Number(f[4]) };
  }).filter((x) => x.tid === pid);
}

kernelTest(
  "drsnoop -M: a cgroup at its limit reclaims its own page cache, line by line, as bpftrace counts",
  async () => {
    const cg = `${MEMCG_V1}/bpftk-drsnoop`;
    const file = await Deno.makeTempFile({ dir: "/var/tmp", prefix: "bpftk-drsnoop-" });
    const tools: Spawned[] = [];
    let reader: Spawned | undefined;
    Deno.mkdirSync(cg, { recursive: true });
    try {
      Deno.writeTextFileSync(`${cg}/memory.limit_in_bytes`, `${LIMIT_MIB << 20}`);
      // Written around the page cache, so reading it brings every page in.
      await runOk("dd", [
        "if=/dev/zero",
        `of=${file}`,
        "bs=1M",
        `count=${FILE_MIB}`,
        "oflag=direct",
      ]);
      reader = new Spawned("bash", [
        "-c",
        `echo $$ > ${cg}/cgroup.procs && exec python3 -c "$0" "$1"`,
        READER,
        file,
      ], { stdin: "piped" });
      await reader.waitForOutput(/^pid \d+$/m);
      const pid = Number(reader.stdout.match(/^pid (\d+)$/m)![1]);

      const before = await ourPrograms();
      const memcg = new ToolProcess("drsnoop", ["-M"]);
      const global = new ToolProcess("drsnoop", []);
      const json = new ToolProcess("drsnoop", ["-M", "--json", "-p", String(pid)]);
      const ref = new ReferenceTool("/usr/sbin/drsnoop", []);
      const bt = new Spawned("bpftrace", [
        "-e",
        `tracepoint:vmscan:mm_vmscan_memcg_reclaim_end /tid == ${pid}/ ` +
        "{ @n = count(); @pages = sum(args->nr_reclaimed); }",
      ]);
      tools.push(memcg, global, json, ref, bt);
      for (const t of [memcg, global, ref]) await t.waitForOutput(READY);
      await bt.waitForOutput(/Attaching 1 probe/);
      await waitForPrograms("drsnoop_mend", 2);
      assert(await ourPrograms() >= before + 6);
      const fail0 = Number(Deno.readTextFileSync(`${cg}/memory.failcnt`));

      await reader.write("go\n");
      await reader.closeStdin();
      const r = await reader.wait();
      assertEquals(r.code, 0, r.stderr);
      const fails = Number(Deno.readTextFileSync(`${cg}/memory.failcnt`)) - fail0;
      await new Promise((res) => setTimeout(res, 300)); // the last lines through the buffers

      const [m, g, j, ref1, b] = await Promise.all(tools.map((t) => t.stop()));
      for (const x of [m, g, j, ref1]) assertEquals(x.code, 0, x.stderr);

      const mine = lines(m.stdout, pid);
      const pages = mine.reduce((n, x) => n + x.pages, 0);
      const least = ((FILE_MIB - LIMIT_MIB) << 20) / 4096 * 0.9;
      const most = (FILE_MIB << 20) / 4096 * 1.1;
      assert(
        mine.length >= 1 && mine.length <= fails,
        `${mine.length} reclaims, ${fails} failed charges`,
      );
      assert(
        pages >= least && pages <= most,
        `${pages} pages reclaimed, expected ${least}..${most}`,
      );
      assert(mine.every((x) => x.comm === "drworkload" && x.ms >= 0), m.stdout.slice(0, 2000));

      // bpftrace on the same tracepoint: the same reclaims, the same pages.
      const n = Number(b.stdout.match(/^@n: (\d+)$/m)?.[1]);
      const btPages = Number(b.stdout.match(/^@pages: (\d+)$/m)?.[1]);
      assert(Math.abs(n - mine.length) <= 1, `bpftrace ${n}, ours ${mine.length}:\n${b.stdout}`);
      assert(Math.abs(btPages - pages) <= 64, `bpftrace ${btPages} pages, ours ${pages}`);

      // --json -p: the same reclaims, in numbers.
      const objs = j.stdout.trim().split("\n").filter((l) => l).map((l) => JSON.parse(l));
      assertEquals(objs.length, mine.length);
      assertEquals(objs.reduce((s, o) => s + o.pages, 0), pages);

      // Global direct reclaim only: nothing for the process, as libbpf-tools.
      assertEquals(lines(g.stdout, pid).length, 0, g.stdout);
      assertEquals(lines(ref1.stdout, pid).length, 0, ref1.stdout);
    } finally {
      for (const t of tools) t.killTree();
      reader?.killTree();
      await Promise.allSettled([...tools, ...(reader ? [reader] : [])].map((t) => t.wait()));
      await Deno.remove(file).catch(() => {});
      await waitFor(
        () => {
          try {
            Deno.removeSync(cg);
            return true;
          } catch {
            return false;
          }
        },
        5000,
        `removal of ${cg}`,
      );
    }
    await waitFor(async () => (await ourPrograms()) === 0, 3000, "drsnoop to unload");
  },
  { commands: ["bpftrace"], missing: haveMemcgV1() ? undefined : "no cgroup v1 memory controller" },
);

function haveMemcgV1(): boolean {
  try {
    Deno.statSync(`${MEMCG_V1}/memory.limit_in_bytes`);
    return true;
  } catch {
    return false;
  }
}

kernelTest("drsnoop -e without vm_zone_stat in kallsyms: one line naming it, exit 1", async () => {
  const hasIt = Deno.readTextFileSync("/proc/kallsyms").includes(" vm_zone_stat\n");
  const { code, stdout, stderr } = await runToolOnce("drsnoop", ["-e", "-d", "1"]);
  if (hasIt) {
    assertEquals(code, 0, stderr);
    assert(/FREE\(KB\)$/m.test(stdout), stdout);
    return;
  }
  assertEquals(code, 1, stderr);
  assertEquals(stdout, "");
  assertEquals(
    stderr,
    "drsnoop: -e needs the address of vm_zone_stat, which /proc/kallsyms lists only on kernels built with CONFIG_KALLSYMS_ALL\n",
  );
});

for (
  const [args, pattern] of [
    [["-p", "1", "-t", "1"], /^drsnoop: -p and -t cannot be used together/],
    [["-d", "0"], /^drsnoop: invalid duration '0': must be at least 1/],
    [["-p", "-1"], /^drsnoop: invalid PID '-1': negative/],
    [["5"], /^drsnoop: unrecognized positional argument: '5'/],
  ] as [string[], RegExp][]
) {
  Deno.test(`drsnoop ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("drsnoop", args);
    assertEquals(code, 2, stderr);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(pattern.test(stderr), stderr);
  });
}
