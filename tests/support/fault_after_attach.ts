#!/usr/bin/env -S deno run -A
/**
 * Test seam for the cleanup tests: runs tools/TOOL.ts with an error thrown
 * once its programs are attached, so a test can check that a thrown error
 * leaves nothing loaded. Product code has no hook for it:
 *
 *     deno run -A tests/support/fault_after_attach.ts TOOL [ARGS...]
 *
 * Every driver (lib/cli/drivers/*) arms its Ctrl-C handler (StopSignal, the
 * first Deno.addSignalListener of a tool) right after loadAndAttach returns,
 * inside its `using session` scope: that is where the fault is thrown. The
 * seam checks that this process holds BPF links at that moment, so a driver
 * that arms signals earlier fails the test rather than passing vacuously.
 *
 * @module
 */

import { run } from "./process.ts";

const MESSAGE = "injected fault after attach (test seam)";

/** Runs `tool` with `args` through this seam; resolves with its status and output. */
export async function runToolWithFault(
  tool: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  // Through tests/support/process.ts: killed at its deadline like every process a test starts.
  const out = await run(Deno.execPath(), [
    "run",
    "-A",
    new URL(import.meta.url).pathname,
    tool,
    ...args,
  ]);
  return { code: out.code, stdout: out.stdout, stderr: out.stderr };
}

/** How many BPF links this process holds (their fdinfo names a link_type). */
function bpfLinksHeld(): number {
  let links = 0;
  for (const entry of Deno.readDirSync("/proc/self/fdinfo")) {
    try {
      if (/^link_type:/m.test(Deno.readTextFileSync(`/proc/self/fdinfo/${entry.name}`))) links++;
    } catch { /* closed meanwhile */ }
  }
  return links;
}

if (import.meta.main) {
  const [name, ...args] = Deno.args;
  const { tool } = await import(new URL(`../../tools/${name}.ts`, import.meta.url).href);
  const addSignalListener = Deno.addSignalListener;
  Deno.addSignalListener = () => {
    Deno.addSignalListener = addSignalListener;
    if (bpfLinksHeld() === 0) {
      throw new Error("fault seam: nothing attached before the first signal handler");
    }
    throw new Error(MESSAGE);
  };
  await tool.main(args);
}
