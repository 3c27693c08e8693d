/**
 * The frame every tool runs in: one-line errors with bcc-like exit codes
 * (0 ok, 1 runtime failure, 2 usage error). Kernel objects are released by
 * their owners before this exits: the drivers hold their Session in a `using`
 * scope inside `main`, which has unwound (on return, Ctrl-C, SIGTERM, `| head`
 * or a thrown error) by the time `main`'s promise settles.
 */
import { BrokenPipe } from "./output.ts";
import { UsageError } from "./usage.ts";
import { envSwitch } from "./env.ts";

/** Runs a tool's main function and exits with its status. */
export async function runTool(name: string, main: () => Promise<void> | void): Promise<never> {
  let status = 0;
  try {
    await main();
  } catch (e) {
    status = report(name, e);
  }
  Deno.exit(status);
}

function report(name: string, e: unknown): number {
  if (e instanceof BrokenPipe) return 0;
  const message = e instanceof Error ? e.message : String(e);
  const line = message.split("\n")[0];
  if (e instanceof UsageError) {
    console.error(`${name}: ${line} (see '${name} --help')`);
    return 2;
  }
  console.error(`${name}: ${line}`);
  if (envSwitch("BPFTK_DEBUG") && e instanceof Error) console.error(e.stack);
  return 1;
}
