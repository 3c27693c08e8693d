/**
 * What the event tools' tests share: a workload that waits for "go" on its
 * stdin (so its PID is known, and the tracers attached, before it acts), a
 * wait for a tool's programs to be attached (for --json runs, which print no
 * header), the libbpf-tools reference run line-buffered, and CPU time of a
 * process.
 */
import { loadedProgramNames, waitFor } from "./kernel.ts";

/** A process started paused: it runs when `go()` closes its stdin. */
export class PausedWorkload {
  readonly child: Deno.ChildProcess;
  readonly #output: Promise<Deno.CommandOutput>;

  constructor(cmd: string, args: string[]) {
    this.child = new Deno.Command(cmd, {
      args,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#output = this.child.output();
  }

  get pid(): number {
    return this.child.pid;
  }

  /** Lets it run (its first read from stdin returns), and waits for it to end. */
  async run(): Promise<{ code: number; stdout: string; stderr: string }> {
    const w = this.child.stdin.getWriter();
    await w.write(new TextEncoder().encode("go\n"));
    await w.close();
    const out = await this.#output;
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  }
}

/** Waits until at least `n` programs named `name` are loaded (one per running tool). */
export async function waitForPrograms(name: string, n: number, ms = 15000): Promise<void> {
  await waitFor(
    async () => (await loadedProgramNames()).filter((p) => p === name).length >= n,
    ms,
    `${n} programs named ${name}`,
  );
  await new Promise((r) => setTimeout(r, 200)); // the last link is created right after load
}

/** User + system CPU milliseconds a process has used so far (/proc/PID/stat, 100 Hz ticks). */
export function cpuMs(pid: number): { user: number; system: number } {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // after "pid (comm) ": state is field 3, utime field 14, stime field 15
  return { user: Number(fields[11]) * 10, system: Number(fields[12]) * 10 };
}

/** A libbpf-tools reference tool, stdout line-buffered (stdbuf) so a pipe sees lines as printed. */
export class ReferenceTool {
  readonly child: Deno.ChildProcess;
  #stdout = "";
  #stderr = "";
  readonly #done: Promise<number>;

  constructor(path: string, args: string[]) {
    this.child = new Deno.Command("stdbuf", {
      args: ["-oL", path, ...args],
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
    }).spawn();
    const collect = async (s: ReadableStream<Uint8Array>, into: (t: string) => void) => {
      for await (const chunk of s.pipeThrough(new TextDecoderStream())) into(chunk);
    };
    this.#done = Promise.all([
      collect(this.child.stdout, (t) => (this.#stdout += t)),
      collect(this.child.stderr, (t) => (this.#stderr += t)),
    ]).then(async () => (await this.child.status).code);
  }

  async waitForOutput(re: RegExp, ms = 15000): Promise<void> {
    await waitFor(() => re.test(this.#stdout), ms, `${re} from the reference tool`);
  }

  async stop(): Promise<{ code: number; stdout: string; stderr: string }> {
    this.child.kill("SIGINT");
    const code = await this.#done;
    return { code, stdout: this.#stdout, stderr: this.#stderr };
  }
}

/** The total of "Lost N events on CPU #C!" lines (ours and libbpf-tools' wording). */
export function lostInStderr(stderr: string): number {
  let total = 0;
  for (const m of stderr.matchAll(/^Lost (\d+) events on CPU #\d+!$/gm)) total += Number(m[1]);
  return total;
}
