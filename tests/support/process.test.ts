/**
 * The machinery that keeps tests from hanging: a process past its deadline
 * is killed with its descendants and the wait fails with what it printed;
 * a process that ignores its stop signal is killed after the grace period;
 * a test past its time limit has its processes killed and fails naming them.
 */
import { equal, ok as assert, rejects } from "node:assert/strict";
import { withTimeLimit } from "./kernel.ts";
import { descendants, ProcessDeadlineError, run, Spawned } from "./process.ts";

/** True while `pid` exists and is not a zombie. */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z /.test(Deno.readTextFileSync(`/proc/${pid}/stat`));
  } catch {
    return false;
  }
}

Deno.test("process: past its deadline, SIGKILL to it and its children; the wait says what it saw", async () => {
  const p = new Spawned("bash", ["-c", "echo started; sleep 100 & sleep 100"], { deadlineMs: 500 });
  await p.waitForOutput(/started/);
  await new Promise((r) => setTimeout(r, 100)); // both sleeps forked
  const children = descendants(p.pid);
  equal(children.length, 2);
  const err = await p.wait().then(() => undefined, (e) => e);
  assert(err instanceof ProcessDeadlineError, String(err));
  assert(/did not exit in time/.test(err.message) && /started/.test(err.message), err.message);
  await new Promise((r) => setTimeout(r, 100));
  assert(children.every((pid) => !alive(pid)), "its children were killed too");
});

Deno.test("process: a stop signal it ignores ends in SIGKILL after the grace period", async () => {
  const p = new Spawned("bash", ["-c", "trap '' INT; echo ready; while :; do sleep 0.05; done"]);
  await p.waitForOutput(/ready/);
  const t0 = performance.now();
  await rejects(p.stop("SIGINT", 300), ProcessDeadlineError);
  assert(performance.now() - t0 < 5000);
});

Deno.test("process: run() returns status and output; input reaches stdin", async () => {
  const out = await run("sh", ["-c", "cat; echo err >&2; exit 3"], { input: "in\n" });
  equal(out.code, 3);
  equal(out.stdout, "in\n");
  equal(out.stderr, "err\n");
});

Deno.test("time limit: past it, the test's processes are killed and it fails naming them", async () => {
  const limited = withTimeLimit(300, async () => {
    await new Spawned("sleep", ["100"]).wait();
  });
  const err = await limited({} as Deno.TestContext).then(() => undefined, (e) => e);
  assert(
    err instanceof Error && /time limit of 300 ms exceeded; killed: 'sleep 100'/.test(err.message),
    String(err),
  );
});
