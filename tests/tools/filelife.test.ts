/**
 * filelife against files whose lives are known: a process named "fltest"
 * creates 9 files in a directory of its own (3 by a relative name, 3 by an
 * absolute one, 3 relative to a directory fd), deletes each after a
 * different known time, and measures each age itself; it also opens with
 * O_CREAT and deletes a file that existed before tracing began, which was
 * not born while tracing and must not be shown. filelife must print the 9
 * lines for it, each with its name and its measured age (to 0.02 s), and no
 * other line for it; -p and --json the same.
 *
 * No reference can run here: libbpf-tools filelife needs kprobes on
 * vfs_create and vfs_unlink, and bpftrace has no filelife.bt.
 */
import {
  deepEqual as assertDeepEqual,
  equal as assertEquals,
  ok as assert,
} from "node:assert/strict";
import { waitForPrograms } from "../support/event_tools.ts";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { Spawned } from "../support/process.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";

const WORKLOAD = `
import os, sys, time
open("/proc/self/comm", "w").write("fltest")
top = sys.argv[1]
os.chdir(top)
print(f"pid {os.getpid()}", flush=True)
sys.stdin.readline()
d = os.open(top, os.O_RDONLY)
ages = {}
for i in range(9):
    name = f"f{i}.tmp"
    how = ["rel", "abs", "dirfd"][i % 3]
    path = os.path.join(top, name) if how == "abs" else name
    kw = {"dir_fd": d} if how == "dirfd" else {}
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600, **kw))
    t0 = time.monotonic()
    time.sleep(0.03 * (i + 1))
    ages[name] = time.monotonic() - t0
    os.unlink(path, **kw)
os.close(os.open("old.tmp", os.O_CREAT | os.O_WRONLY))
os.unlink("old.tmp")
print("ages " + ",".join(f"{k}={v:.4f}" for k, v in ages.items()), flush=True)
`;

async function programs(): Promise<number> {
  return (await loadedProgramNames()).filter((n) => n === "filelife_unlatx").length;
}

kernelTest(
  "filelife: 9 files created and deleted by fltest -> 9 lines with their ages; an older file none",
  async () => {
    const top = await Deno.makeTempDir({ dir: "/var/tmp", prefix: "bpftk-filelife-" });
    Deno.writeTextFileSync(`${top}/old.tmp`, "born before tracing\n");
    const workload = new Spawned("python3", ["-c", WORKLOAD, top], { stdin: "piped" });
    const before = await programs();
    const all = new ToolProcess("filelife", []);
    let byPid: ToolProcess | undefined, json: ToolProcess | undefined;
    try {
      await workload.waitForOutput(/^pid \d+$/m);
      const pid = Number(workload.stdout.match(/^pid (\d+)$/m)![1]);
      byPid = new ToolProcess("filelife", ["-p", String(pid)]);
      json = new ToolProcess("filelife", ["--json", "-p", String(pid)]);
      await all.waitForOutput(/AGE\(s\) +FILE$/m);
      await byPid.waitForOutput(/AGE\(s\) +FILE$/m);
      await waitForPrograms("filelife_unlatx", before + 3);
      await workload.write("go\n");
      await workload.closeStdin();
      const w = await workload.wait();
      assertEquals(w.code, 0, w.stderr);
      const ages = new Map(
        w.stdout.match(/^ages (.*)$/m)![1].split(",").map((kv) => {
          const [k, v] = kv.split("=");
          return [k, Number(v)] as const;
        }),
      );
      await new Promise((r) => setTimeout(r, 300));
      const [a, p, j] = await Promise.all([all, byPid, json].map((t) => t.stop()));
      for (const x of [a, p, j]) assertEquals(x.code, 0, x.stderr);

      assertEquals(
        a.stdout.split("\n").slice(0, 2).join("\n"),
        "Tracing the lifespan of short-lived files ... Hit Ctrl-C to end.\n" +
          "TIME     PID    COMM             AGE(s)  FILE",
      );
      const lines = (out: string) =>
        out.split("\n").slice(2).filter((l) => l !== "").map((l) => {
          const m = l.match(/^\d\d:\d\d:\d\d (\d+) +(.{16}) (\d+\.\d\d) +(.*)$/);
          assert(m, `bad line '${l}'`);
          return { pid: Number(m[1]), comm: m[2].trimEnd(), age: Number(m[3]), file: m[4] };
        });
      const mine = lines(a.stdout).filter((l) => l.pid === pid);
      assertDeepEqual(mine.map((l) => l.file), [...ages.keys()], a.stdout);
      for (const l of mine) {
        assertEquals(l.comm, "fltest");
        const truth = ages.get(l.file)!;
        assert(Math.abs(l.age - truth) <= 0.02, `${l.file}: ${l.age} s, measured ${truth} s`);
      }
      assertDeepEqual(lines(p.stdout), mine.map((l) => ({ ...l })));

      const objs = j.stdout.trim().split("\n").map((l) => JSON.parse(l));
      assertDeepEqual(objs.map((o) => o.path.split("/").at(-1)), [...ages.keys()]);
      for (const o of objs) {
        const truth = ages.get(o.path.split("/").at(-1))!;
        assert(Math.abs(o.ageSeconds - truth) <= 0.01, `${o.path}: ${o.ageSeconds} vs ${truth}`);
      }
      // The absolute ones carry their whole path.
      assert(objs.some((o) => o.path === `${top}/f1.tmp`), j.stdout);
    } finally {
      for (const t of [all, byPid, json]) t?.killTree();
      workload.killTree();
      await Deno.remove(top, { recursive: true }).catch(() => {});
    }
    await waitFor(async () => (await programs()) === before, 5000, "filelife to unload");
  },
);

for (
  const [args, pattern] of [
    [["-p", "0"], /^filelife: invalid PID '0': must be at least 1/],
    [["x"], /^filelife: unrecognized positional argument: 'x'/],
    [["-d", "1"], /^filelife: unknown option '-d'/],
  ] as [string[], RegExp][]
) {
  Deno.test(`filelife ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("filelife", args);
    assertEquals(code, 2, stderr);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(pattern.test(stderr), stderr);
  });
}
