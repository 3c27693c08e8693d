/** Running a tool as a subprocess, the way an operator would, and reading its output. */
import { type Outcome, Spawned, type SpawnOptions } from "./process.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** A running tool (deno run -A tools/NAME.ts), killed at its deadline like any process. */
export class ToolProcess extends Spawned {
  constructor(tool: string, args: string[], opts: SpawnOptions = {}) {
    super("deno", ["run", "-A", `${ROOT}tools/${tool}.ts`, ...args], opts);
  }

  /** Waits for exit (at most `ms`, default the deadline); returns status and everything printed. */
  async finish(ms?: number): Promise<Outcome> {
    return await this.wait(ms);
  }
}

/** Runs a tool to completion (killed at its deadline). */
export async function runToolOnce(
  tool: string,
  args: string[],
  opts: SpawnOptions = {},
): Promise<Outcome> {
  return await new ToolProcess(tool, args, opts).finish();
}

/** The repository root (for tests that build paths). */
export const REPO_ROOT = ROOT;
