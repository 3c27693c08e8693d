/**
 * runqlat against a workload whose truth is known (tests/support/sched_workload.py):
 * N wakeups of one process, each waiting ~SPIN_MS in the run queue behind a
 * SCHED_FIFO spinner on the same CPU. Cross-checked with libbpf-tools runqlat
 * run at the same time.
 */
import { equal as assertEquals, ok as assert } from "node:assert/strict";
import { kernelTest, waitFor } from "../support/kernel.ts";
import { countBetween, parseLog2Hists, total } from "../support/log2_hist_parse.ts";
import { REPO_ROOT, ToolProcess } from "../support/tool_process.ts";

const N = 15;
const SPIN_MS = 20;
const CPU = 1;

/** Starts the workload; returns the waiter's PID and a function that runs it to the end. */
async function startWorkload(cgroup?: string) {
  const script = `${REPO_ROOT}tests/support/sched_workload.py`;
  const join = cgroup ? `echo $$ > ${cgroup}/cgroup.procs && ` : "";
  const child = new Deno.Command("bash", {
    args: ["-c", `${join}exec python3 ${script} ${CPU} ${N} ${SPIN_MS}`],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  while (!/waiter (\d+)\n/.test(buf)) {
    const { value, done } = await lines.read();
    if (done) throw new Error("workload exited early");
    buf += value;
  }
  const pid = Number(buf.match(/waiter (\d+)/)![1]);
  const run = async () => {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode("go\n"));
    await w.close();
    while (!/done/.test(buf)) {
      const { value, done } = await lines.read();
      if (done) break;
      buf += value;
    }
    lines.releaseLock();
    await child.stdout.cancel().catch(() => {});
    assert((await child.status).success, "workload failed");
  };
  return { pid, run };
}

/** libbpf-tools runqlat, for the cross-check. */
function startReference(pid: number) {
  const child = new Deno.Command("runqlat", {
    args: ["-p", String(pid)],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  return child;
}

Deno.test(
  kernelTest("runqlat: FIFO-blocked wakeups land in the SPIN_MS bucket, like libbpf-tools"),
  async () => {
    const { pid, run } = await startWorkload();
    const ours = new ToolProcess("runqlat", ["-p", String(pid)]);
    const ref = startReference(pid);
    await ours.waitForOutput(/Tracing run queue latency/);
    await new Promise((r) => setTimeout(r, 400)); // the reference attaches in ~50 ms
    await run();
    ours.kill("SIGINT");
    ref.kill("SIGINT");
    const [mine, theirs] = await Promise.all([ours.finish(), ref.output()]);
    assertEquals(mine.code, 0, mine.stderr);

    const [h] = parseLog2Hists(mine.stdout);
    assert(h, `no histogram in: ${mine.stdout}`);
    assertEquals(h.unit, "usecs");
    // SPIN_MS = 20 ms lies in the 16384 -> 32767 usecs slot.
    const slow = countBetween(h, 16384, 32767);
    assert(
      slow >= N - 1 && slow <= N,
      `expected ${N} wakeups of ~${SPIN_MS} ms, got ${slow}: ${mine.stdout}`,
    );
    // Nothing of the waiter's waits longer than the spinner spins.
    assertEquals(countBetween(h, 32768, 2 ** 40), 0, mine.stdout);

    const [r] = parseLog2Hists(new TextDecoder().decode(theirs.stdout));
    assert(r, "libbpf-tools runqlat printed no histogram");
    const refSlow = countBetween(r, 16384, 32767);
    // Tolerance: the same wakeups, give or take one at the edges of attachment.
    assert(Math.abs(refSlow - slow) <= 1, `ours ${slow} vs libbpf-tools ${refSlow}`);
    assert(
      Math.abs(total(r) - total(h)) <= 2,
      `totals: ours ${total(h)} vs libbpf-tools ${total(r)}`,
    );
  },
);

Deno.test(kernelTest("runqlat -m -P --json: the same wakeups, per process, in msecs"), async () => {
  const { pid, run } = await startWorkload();
  const text = new ToolProcess("runqlat", ["-m", "-P", "-p", String(pid)]);
  const json = new ToolProcess("runqlat", ["-m", "-P", "--json", "-p", String(pid)]);
  await text.waitForOutput(/Tracing/);
  await new Promise((r) => setTimeout(r, 300));
  await run();
  text.kill("SIGINT");
  json.kill("SIGINT");
  const [t, j] = await Promise.all([text.finish(), json.finish()]);
  assertEquals(t.code, 0, t.stderr);
  assertEquals(j.code, 0, j.stderr);
  assert(new RegExp(`^pid = ${pid} python3`, "m").test(t.stdout), t.stdout);
  const [h] = parseLog2Hists(t.stdout);
  assertEquals(h.unit, "msecs");
  // 20 ms lies in the 16 -> 31 msecs slot.
  const slow = countBetween(h, 16, 31);
  assert(slow >= N - 1 && slow <= N, t.stdout);

  const obj = JSON.parse(j.stdout.trim().split("\n").at(-1)!);
  assertEquals(obj.unit, "msecs");
  const hist = obj.histograms.find((x: { pid: number }) => x.pid === pid);
  assert(hist, j.stdout);
  const jsonSlow = hist.buckets.find((b: { low: number }) => b.low === 16).count;
  assertEquals(jsonSlow, slow);
});

Deno.test(
  kernelTest("runqlat -c CG: counts the workload inside the cgroup, nothing outside"),
  async () => {
    const root = "/sys/fs/cgroup/unified";
    const inside = `${root}/bpftk-runqlat-in`, empty = `${root}/bpftk-runqlat-empty`;
    for (const dir of [inside, empty]) Deno.mkdirSync(dir, { recursive: true });
    try {
      const { pid, run } = await startWorkload(inside);
      const filtered = new ToolProcess("runqlat", ["-c", inside, "-p", String(pid)]);
      const other = new ToolProcess("runqlat", ["-c", empty]);
      const ref = new Deno.Command("runqlat", {
        args: ["-c", inside, "-p", String(pid)],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      await filtered.waitForOutput(/Tracing/);
      await other.waitForOutput(/Tracing/);
      await new Promise((r) => setTimeout(r, 400));
      await run();
      filtered.kill("SIGINT");
      other.kill("SIGINT");
      ref.kill("SIGINT");
      const [f, o, r] = await Promise.all([filtered.finish(), other.finish(), ref.output()]);
      assertEquals(f.code, 0, f.stderr);
      assertEquals(o.code, 0, o.stderr);
      // As in libbpf-tools, -c tests the *current* task: the waker at wakeup,
      // the task switched out at switch. The spinner is both, unless another
      // task on that CPU gets in between (a busy machine), so the truth here is
      // libbpf-tools' count with the same -c on the same events.
      const slow = countBetween(parseLog2Hists(f.stdout)[0], 16384, 32767);
      const [refHist] = parseLog2Hists(new TextDecoder().decode(r.stdout));
      assert(refHist, "libbpf-tools runqlat -c printed no histogram");
      const refSlow = countBetween(refHist, 16384, 32767);
      assert(slow >= 1 && slow <= N, f.stdout);
      assert(Math.abs(slow - refSlow) <= 1, `ours ${slow} vs libbpf-tools ${refSlow}`);
      // Nobody runs in the empty cgroup: no histogram rows at all.
      assertEquals(parseLog2Hists(o.stdout).reduce((n, h) => n + total(h), 0), 0, o.stdout);
    } finally {
      for (const dir of [inside, empty]) {
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
    }
  },
);
