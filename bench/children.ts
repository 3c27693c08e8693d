/**
 * Every process the benchmark starts goes through here, in its own process
 * group, so that Ctrl-C, SIGTERM or a thrown error can end the whole tree
 * (a tool and whatever it starts, stress-ng and its workers) by group id.
 */

const live = new Set<number>();

/** Starts `argv` detached (a new session and process group) and remembers its group. */
export function spawnTracked(
  argv: string[],
  options: { cwd?: string; env?: Record<string, string>; output: "piped" | "null" },
): Deno.ChildProcess {
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    cwd: options.cwd,
    env: options.env,
    stdin: "null",
    stdout: options.output,
    stderr: options.output,
    detached: true,
  }).spawn();
  live.add(child.pid);
  child.status.finally(() => {
    // The leader is gone; whatever it left in its group still gets killed.
    killGroup(child.pid, "SIGKILL");
    live.delete(child.pid);
  });
  return child;
}

/** Sends `signal` to the process group led by `pid`; a group that is already gone is fine. */
export function killGroup(pid: number, signal: Deno.Signal): void {
  try {
    Deno.kill(-pid, signal);
  } catch {
    // ESRCH: nothing left in the group.
  }
}

/** Kills every process group the benchmark started and has not seen exit. */
export function killAllChildren(): void {
  for (const pid of live) killGroup(pid, "SIGKILL");
}

/**
 * Interrupts a tool the way an operator would (SIGINT), repeating it every
 * second (bpftrace 0.17 now and then ignores one), then kills its group if it
 * has not exited within `graceMs`.
 */
export async function stopGracefully(child: Deno.ChildProcess, graceMs: number): Promise<void> {
  let exited = false;
  child.status.then(() => (exited = true));
  const deadline = performance.now() + graceMs;
  while (!exited && performance.now() < deadline) {
    killGroup(child.pid, "SIGINT");
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      child.status,
      new Promise((resolve) => (timer = setTimeout(resolve, 1000))),
    ]);
    clearTimeout(timer);
  }
  if (!exited) killGroup(child.pid, "SIGKILL");
  await child.status;
}

/** Pids whose parent is `parent` (from /proc/PID/stat). */
export function childrenOf(parent: number): number[] {
  const found: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === parent) found.push(Number(entry.name));
    } catch {
      // Exited while listing.
    }
  }
  return found;
}
