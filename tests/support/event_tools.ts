/**
 * What the event tools' tests share: a workload that waits for "go" on its
 * stdin (so its PID is known, and the tracers attached, before it acts), a
 * wait for a tool's programs to be attached (for --json runs, which print no
 * header), the libbpf-tools reference run line-buffered, and CPU time of a
 * process in nanoseconds.
 */
import { loadedProgramNames, waitFor } from "./kernel.ts";
import { type Outcome, Spawned, type SpawnOptions } from "./process.ts";

/** A process started paused: it runs when `go()` closes its stdin. */
export class PausedWorkload extends Spawned {
  constructor(cmd: string, args: string[], opts: SpawnOptions = {}) {
    super(cmd, args, { ...opts, stdin: "piped" });
  }

  /** Lets it run (its first read from stdin returns), and waits for it to end. */
  async run(): Promise<Outcome> {
    await this.write("go\n");
    await this.closeStdin();
    return await this.wait();
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

/**
 * Nanoseconds of CPU a process has used so far, all its threads
 * (/proc/PID/schedstat per task: the scheduler's own accounting, not 10 ms
 * ticks).
 */
export function cpuNs(pid: number): number {
  let ns = 0;
  for (const t of Deno.readDirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(Deno.readTextFileSync(`/proc/${pid}/task/${t.name}/schedstat`).split(" ")[0]);
    } catch {
      // the thread exited meanwhile
    }
  }
  return ns;
}

/** A libbpf-tools reference tool, stdout line-buffered (stdbuf) so a pipe sees lines as printed. */
export class ReferenceTool extends Spawned {
  constructor(path: string, args: string[], opts: SpawnOptions = {}) {
    super("stdbuf", ["-oL", path, ...args], opts);
  }
}

/** The total of "Lost N events on CPU #C!" lines (ours and libbpf-tools' wording). */
export function lostInStderr(stderr: string): number {
  let total = 0;
  for (const m of stderr.matchAll(/^Lost (\d+) events on CPU #\d+!$/gm)) total += Number(m[1]);
  return total;
}
