/**
 * Every process a test starts goes through here, so none can outlive its
 * deadline: past it the process and its descendants get SIGKILL and the wait
 * throws with what the process printed. A test's time limit (kernel.ts)
 * kills whatever is still running the same way.
 */

/** How a process ended and everything it printed. */
export interface Outcome {
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
}

/** Options for a spawned process. */
export interface SpawnOptions {
  env?: Record<string, string>;
  clearEnv?: boolean;
  cwd?: string;
  /** "piped" to write to the process (write(), closeStdin()); default "null". */
  stdin?: "piped" | "null";
  /** Milliseconds from spawn until SIGKILL (default 60 s). */
  deadlineMs?: number;
}

/** Default deadline of a process: longer than any single tool run in the suite. */
export const DEFAULT_DEADLINE_MS = 60_000;

/** How long a process has to exit after a stop signal before it gets SIGKILL. */
export const STOP_GRACE_MS = 10_000;

/** Thrown when a process is killed at its deadline; says what it printed. */
export class ProcessDeadlineError extends Error {}

const live = new Set<Spawned>();

/** A running process with its stdout and stderr collected as text. */
export class Spawned {
  readonly child: Deno.ChildProcess;
  readonly command: string;
  #stdout = "";
  #stderr = "";
  #exited = false;
  #killedAtDeadline = false;
  #stopSentAt?: number;
  readonly #status: Promise<Deno.CommandStatus>;
  readonly #streams: Promise<void>;
  readonly #timer: ReturnType<typeof setTimeout>;
  #writer?: WritableStreamDefaultWriter<Uint8Array>;

  constructor(cmd: string, args: string[], opts: SpawnOptions = {}) {
    this.command = [cmd, ...args].join(" ");
    this.child = new Deno.Command(cmd, {
      args,
      env: opts.env,
      clearEnv: opts.clearEnv,
      cwd: opts.cwd,
      stdin: opts.stdin ?? "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    live.add(this);
    const collect = async (s: ReadableStream<Uint8Array>, into: (t: string) => void) => {
      try {
        for await (const chunk of s.pipeThrough(new TextDecoderStream())) into(chunk);
      } catch {
        // cancelled after exit (a descendant kept the pipe open)
      }
    };
    this.#streams = Promise.all([
      collect(this.child.stdout, (t) => (this.#stdout += t)),
      collect(this.child.stderr, (t) => (this.#stderr += t)),
    ]).then(() => {});
    const deadline = opts.deadlineMs ?? DEFAULT_DEADLINE_MS;
    this.#timer = setTimeout(() => {
      this.#killedAtDeadline = true;
      this.killTree();
    }, deadline);
    this.#status = this.child.status.then((s) => {
      this.#exited = true;
      clearTimeout(this.#timer);
      live.delete(this);
      return s;
    });
  }

  get pid(): number {
    return this.child.pid;
  }
  get stdout(): string {
    return this.#stdout;
  }
  get stderr(): string {
    return this.#stderr;
  }
  get exited(): boolean {
    return this.#exited;
  }

  /** Writes text to stdin (spawned with stdin "piped"). */
  async write(text: string): Promise<void> {
    this.#writer ??= this.child.stdin.getWriter();
    await this.#writer.write(new TextEncoder().encode(text));
  }

  /** Closes stdin (the process reads end of file). */
  async closeStdin(): Promise<void> {
    this.#writer ??= this.child.stdin.getWriter();
    await this.#writer.close().catch(() => {});
  }

  /** Resolves once stdout (or stderr) matches `re`; throws with both after `ms`, or on exit. */
  async waitForOutput(re: RegExp, ms = 15_000, stream: "stdout" | "stderr" = "stdout") {
    const deadline = Date.now() + ms;
    const text = () => (stream === "stdout" ? this.#stdout : this.#stderr);
    while (!re.test(text())) {
      if (this.#exited) {
        await this.#settleStreams();
        if (re.test(text())) return;
        throw new Error(`${this.#describe()} exited before printing ${re}${this.#seen()}`);
      }
      if (Date.now() > deadline) {
        throw new Error(`no ${re} from ${this.#describe()} in ${ms} ms${this.#seen()}`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /**
   * Sends a signal (ignored once the process has exited). After a signal that
   * asks it to end, wait() gives it STOP_GRACE_MS, not the whole deadline.
   */
  kill(signal: Deno.Signal): void {
    if (this.#exited) return;
    if (!["SIGSTOP", "SIGCONT", "SIGKILL"].includes(signal)) this.#stopSentAt ??= Date.now();
    try {
      this.child.kill(signal);
    } catch {
      // exited between the check and the kill
    }
  }

  /** SIGKILL to the process and every descendant (so no grandchild keeps a pipe open). */
  killTree(): void {
    if (this.#exited) return;
    for (const pid of [...descendants(this.pid), this.pid]) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }

  /**
   * Waits for exit: at most `ms` from now (default: until the deadline set at
   * spawn). Past that, SIGKILL and throw with what it printed.
   */
  async wait(ms?: number): Promise<Outcome> {
    if (ms === undefined && this.#stopSentAt !== undefined) {
      ms = Math.max(0, this.#stopSentAt + STOP_GRACE_MS - Date.now());
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    if (ms !== undefined && !this.#exited) {
      timer = setTimeout(() => {
        this.#killedAtDeadline = true;
        this.killTree();
      }, ms);
    }
    const status = await this.#status;
    clearTimeout(timer);
    await this.#settleStreams();
    if (this.#killedAtDeadline) {
      throw new ProcessDeadlineError(
        `${this.#describe()} did not exit in time: killed${this.#seen()}`,
      );
    }
    return {
      code: status.code,
      signal: status.signal,
      stdout: this.#stdout,
      stderr: this.#stderr,
    };
  }

  /** Sends `signal` (default SIGINT) and waits `graceMs` for exit, then SIGKILL and throw. */
  async stop(signal: Deno.Signal = "SIGINT", graceMs = STOP_GRACE_MS): Promise<Outcome> {
    this.kill(signal);
    return await this.wait(this.#exited ? undefined : graceMs);
  }

  /** Streams end when the last holder of the pipes exits; a descendant may hold them. */
  async #settleStreams(): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const grace = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), 2000)));
    const ended = await Promise.race([this.#streams.then(() => true), grace]);
    clearTimeout(timer);
    if (!ended) {
      await this.child.stdout.cancel().catch(() => {});
      await this.child.stderr.cancel().catch(() => {});
      await this.#streams;
    }
  }

  #describe(): string {
    return `'${this.command.slice(0, 200)}' (pid ${this.pid})`;
  }

  #seen(): string {
    const tail = (s: string) => (s.length > 4000 ? `...${s.slice(-4000)}` : s);
    return `\n--- stdout ---\n${tail(this.#stdout)}\n--- stderr ---\n${tail(this.#stderr)}`;
  }
}

/** Runs a command to completion (killed at its deadline); `input` is written to its stdin. */
export async function run(
  cmd: string,
  args: string[],
  opts: SpawnOptions & { input?: string } = {},
): Promise<Outcome> {
  const p = new Spawned(cmd, args, { ...opts, stdin: opts.input === undefined ? "null" : "piped" });
  if (opts.input !== undefined) {
    await p.write(opts.input);
    await p.closeStdin();
  }
  return await p.wait();
}

/** Runs a command; returns its stdout, or throws with its stderr when it fails. */
export async function runOk(cmd: string, args: string[], opts: SpawnOptions = {}): Promise<string> {
  const out = await run(cmd, args, opts);
  if (out.code !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} failed (${out.code}): ${out.stderr.trim()}`);
  }
  return out.stdout;
}

/**
 * Runs a command synchronously (for checks at module load) under coreutils
 * `timeout`, so it too is killed at its deadline.
 */
export function runSync(
  cmd: string,
  args: string[],
  deadlineMs = 30_000,
): { code: number; stdout: string; stderr: string } {
  try {
    const out = new Deno.Command("timeout", {
      args: ["-s", "KILL", `${deadlineMs / 1000}`, cmd, ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  } catch (e) {
    return { code: 127, stdout: "", stderr: String(e) };
  }
}

/** True when `cmd` is on PATH (or is an existing path). */
export function haveCommand(cmd: string): boolean {
  return runSync("sh", ["-c", `command -v '${cmd}'`]).code === 0;
}

/** SIGKILLs every process still running and describes them (for a test's time limit). */
export function killAllLive(): string[] {
  const killed = [...live].map((p) => `'${p.command.slice(0, 120)}' (pid ${p.pid})`);
  for (const p of live) p.killTree();
  return killed;
}

/** PIDs of every descendant of `pid`, from /proc/PID/stat parent links. */
export function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  try {
    for (const e of Deno.readDirSync("/proc")) {
      if (!/^\d+$/.test(e.name)) continue;
      try {
        const stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
        const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
        parent.set(Number(e.name), ppid);
      } catch {
        // exited while we looked
      }
    }
  } catch {
    return [];
  }
  const out: number[] = [];
  const todo = [pid];
  while (todo.length) {
    const p = todo.pop()!;
    for (const [child, pp] of parent) {
      if (pp === p) {
        out.push(child);
        todo.push(child);
      }
    }
  }
  return out;
}
