/**
 * Running the reference tools (libbpf-tools, bpftrace) from tests: producing
 * scheduler and disk activity, capturing stdout. Whether a reference is
 * installed is each test's `commands` need (tests/support/kernel.ts): in CI
 * a missing one fails the test, elsewhere the test is ignored with a note.
 *
 * @module
 */
import { type Outcome, run, Spawned } from "../../support/process.ts";

/** Output of a finished command. */
export type Captured = Outcome;

/** Runs a command to completion (killed at its deadline) and returns its exit code and output. */
export async function capture(cmd: string, args: string[]): Promise<Captured> {
  return await run(cmd, args);
}

/** SIGKILLs background loops and waits for them. */
async function stopAll(children: Spawned[]): Promise<void> {
  for (const child of children) child.killTree();
  await Promise.allSettled(children.map((child) => child.wait()));
}

/**
 * Starts processes that keep the run queues busy and wake up often: more busy
 * loops than CPUs, plus a fork/exec loop. Returns a function that stops them.
 */
export function startSchedulerWorkload(): () => Promise<void> {
  const loops = [
    "while :; do :; done",
    "while :; do :; done",
    "while :; do :; done",
    "while :; do /bin/true; done",
  ];
  const children = loops.map((script) => new Spawned("/bin/sh", ["-c", script]));
  return () => stopAll(children);
}

/**
 * Starts a loop of direct (uncached) writes to a temporary file so block I/O
 * completes while a tool traces. Returns a function that stops it and cleans up.
 */
export async function startDiskWorkload(): Promise<() => Promise<void>> {
  const dir = await Deno.makeTempDir({ prefix: "format-ref-io-" });
  const file = `${dir}/data`;
  const child = new Spawned("/bin/sh", [
    "-c",
    `while :; do dd if=/dev/zero of='${file}' bs=4k count=256 oflag=direct 2>/dev/null; done`,
  ]);
  return async () => {
    await stopAll([child]);
    await Deno.remove(dir, { recursive: true });
  };
}
