/** Running a tool as a subprocess, the way an operator would, and reading its output. */

const ROOT = new URL("../../", import.meta.url).pathname;

/** A running tool. */
export class ToolProcess {
  readonly child: Deno.ChildProcess;
  #stdout = "";
  #stderr = "";
  readonly #done: Promise<Deno.CommandStatus>;

  constructor(tool: string, args: string[], opts: { env?: Record<string, string> } = {}) {
    this.child = new Deno.Command("deno", {
      args: ["run", "-A", `${ROOT}tools/${tool}.ts`, ...args],
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
      env: opts.env,
    }).spawn();
    const collect = async (s: ReadableStream<Uint8Array>, into: (t: string) => void) => {
      for await (const chunk of s.pipeThrough(new TextDecoderStream())) into(chunk);
    };
    const out = collect(this.child.stdout, (t) => (this.#stdout += t));
    const err = collect(this.child.stderr, (t) => (this.#stderr += t));
    this.#done = Promise.all([out, err]).then(() => this.child.status);
  }

  get stdout(): string {
    return this.#stdout;
  }
  get stderr(): string {
    return this.#stderr;
  }

  /** Resolves once stdout has a line matching `re` (the tool is attached). */
  async waitForOutput(re: RegExp, ms = 15000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!re.test(this.#stdout)) {
      if (Date.now() > deadline) {
        throw new Error(
          `no ${re} from tool in ${ms} ms; stdout=${this.#stdout} stderr=${this.#stderr}`,
        );
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  kill(signal: Deno.Signal): void {
    this.child.kill(signal);
  }

  /** Waits for exit; returns status and everything printed. */
  async finish(): Promise<{ code: number; stdout: string; stderr: string }> {
    const status = await this.#done;
    return { code: status.code, stdout: this.#stdout, stderr: this.#stderr };
  }
}

/** Runs a tool to completion. */
export async function runToolOnce(
  tool: string,
  args: string[],
  opts: { env?: Record<string, string> } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return await new ToolProcess(tool, args, opts).finish();
}

/** The repository root (for tests that build paths). */
export const REPO_ROOT = ROOT;
