/**
 * oomkill against a workload whose truth is known: a Python process in a
 * memory cgroup limited to 64 MiB allocates until the kernel kills it (an
 * OOM confined to that cgroup: nothing else is at risk). The truth is the
 * kernel's own report of the kill (the "Killed process" line of the kernel
 * log, with the victim's sizes) and the cgroup's oom_kill counter.
 * libbpf-tools oomkill and bpftrace's oomkill.bt need a kprobe on
 * oom_kill_process, which this kernel does not have.
 */
import { equal as assertEquals, ok as assert } from "node:assert/strict";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { PausedWorkload, waitForPrograms } from "../support/event_tools.ts";
import { runOk } from "../support/process.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";

const MEMCG_V1 = "/sys/fs/cgroup/memory";
const CGROUP_V2 = "/sys/fs/cgroup/unified";

/** A memory cgroup to create: v1's memory controller, else v2's, else undefined. */
function memoryCgroup(): { dir: string; limit: string; killed: () => number } | undefined {
  try {
    Deno.statSync(`${MEMCG_V1}/memory.limit_in_bytes`);
    const dir = `${MEMCG_V1}/bpftk-oomkill-test`;
    return {
      dir,
      limit: "memory.limit_in_bytes",
      killed: () =>
        Number(/^oom_kill (\d+)$/m.exec(Deno.readTextFileSync(`${dir}/memory.oom_control`))![1]),
    };
  } catch { /* no v1 memory controller */ }
  try {
    if (!Deno.readTextFileSync(`${CGROUP_V2}/cgroup.controllers`).split(" ").includes("memory")) {
      return undefined;
    }
    const dir = `${CGROUP_V2}/bpftk-oomkill-test`;
    return {
      dir,
      limit: "memory.max",
      killed: () =>
        Number(/^oom_kill (\d+)$/m.exec(Deno.readTextFileSync(`${dir}/memory.events`))![1]),
    };
  } catch {
    return undefined;
  }
}

async function assertNoneLoaded(): Promise<void> {
  await waitFor(
    async () => !(await loadedProgramNames()).includes("oomkill"),
    5000,
    "oomkill to unload",
  );
}

const cgroup = memoryCgroup();

kernelTest("oomkill: a process killed by its cgroup's OOM, as the kernel reports it", async (t) => {
  const cg = cgroup!;
  Deno.mkdirSync(cg.dir, { recursive: true });
  Deno.writeTextFileSync(`${cg.dir}/${cg.limit}`, String(64 << 20));
  const text = new ToolProcess("oomkill", []);
  const json = new ToolProcess("oomkill", ["--json"]);
  let work: PausedWorkload | undefined;
  const out: Record<string, { code: number; stdout: string; stderr: string }> = {};
  let killed = 0, kernelLine = "";
  try {
    await text.waitForOutput(/Tracing OOM kills/);
    await waitForPrograms("oomkill", 2);
    work = new PausedWorkload("/bin/sh", [
      "-c",
      `echo $$ > ${cg.dir}/cgroup.procs && read go && exec /usr/bin/python3 -c '
x = []
while True: x.append(bytearray(1 << 20))'`,
    ], { deadlineMs: 30_000 });
    const done = await work.run();
    assertEquals(done.signal, "SIGKILL", `${done.code} ${done.stderr}`);
    await waitFor(
      () => text.stdout.includes("OOM kill of") && json.stdout.includes('"tpid"'),
      15_000,
      "the kill in both runs",
    ).catch(() => {});
    killed = cg.killed();
    const log = await runOk("dmesg", []);
    kernelLine = log.split("\n").filter((l) => l.includes(`Killed process ${work!.pid} `)).at(-1) ??
      "";
  } finally {
    out.text = await text.stop();
    out.json = await json.stop();
    work?.killTree();
    await waitFor(
      () => {
        try {
          Deno.removeSync(cg.dir);
          return true;
        } catch {
          return false;
        }
      },
      5000,
      `removal of ${cg.dir}`,
    ).catch(() => {});
  }
  for (const [name, o] of Object.entries(out)) assertEquals(o.code, 0, `${name}: ${o.stderr}`);
  const pid = work!.pid;
  // "Killed process 28993 (python3) total-vm:75160kB, anon-rss:65152kB, file-rss:6684kB, shmem-rss:0kB, UID:0 ..."
  const m =
    /Killed process (\d+) \((.*?)\) total-vm:(\d+)kB, anon-rss:(\d+)kB, file-rss:(\d+)kB, shmem-rss:(\d+)kB, UID:(\d+)/
      .exec(kernelLine);

  await t.step("the kernel killed it once, and logged it", () => {
    assertEquals(killed, 1);
    assert(m, `no kernel log line for ${pid}: '${kernelLine}'`);
  });

  await t.step("one line: triggered by the allocating process, the victim, its pages", () => {
    const lines = out.text.stdout.split("\n").filter((l) => l.includes("OOM kill of"));
    assertEquals(lines.length, 1, out.text.stdout);
    const pages = Math.floor((Number(m![4]) + Number(m![5]) + Number(m![6])) / 4);
    const expected = `Triggered by PID ${pid} ("python3"), OOM kill of PID ${pid} ("python3"), ` +
      `${pages} pages, loadavg: `;
    assert(
      /^\d\d:\d\d:\d\d /.test(lines[0]) && lines[0].slice(9).startsWith(expected),
      `${lines[0]}\n${expected}`,
    );
    assert(/loadavg: [\d.]+ [\d.]+ [\d.]+ \d+\/\d+ \d+$/.test(lines[0]), lines[0]);
  });

  await t.step("--json: the kernel log's sizes, to the kB", () => {
    const events = out.json.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assertEquals(events.length, 1);
    const e = events[0];
    assertEquals(e.tpid, Number(m![1]));
    assertEquals(e.tcomm, m![2]);
    assertEquals(e.totalVmKb, Number(m![3]));
    assertEquals(e.rssKb, Number(m![4]) + Number(m![5]) + Number(m![6]));
    assertEquals(e.uid, Number(m![7]));
    assertEquals(e.fpid, pid);
  });
  await assertNoneLoaded();
}, {
  commands: ["dmesg", "/usr/bin/python3"],
  missing: cgroup ? undefined : "no memory cgroup controller (v1 or v2)",
});

kernelTest("oomkill: SIGINT exits 0 and leaves nothing loaded", async () => {
  const tool = new ToolProcess("oomkill", []);
  await tool.waitForOutput(/Tracing/);
  await waitForPrograms("oomkill", 1);
  assertEquals((await tool.stop("SIGINT")).code, 0);
  await assertNoneLoaded();
});

for (const args of [["-p", "1"], ["extra"]]) {
  Deno.test(`oomkill ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("oomkill", args);
    assertEquals(code, 2, stderr);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(stderr.startsWith("oomkill: "), stderr);
  });
}
