/**
 * A command started paused (memleak -c, as bcc's): its shell waits on a FIFO
 * until the probes are attached, then execs the command, so the tool traces
 * it from its first allocation. Ending it ends the tool's report (SIGINT to
 * ourselves, as when Ctrl-C is hit). Processes are started here, in
 * lib/kernel, like every other way the toolkit reaches outside itself.
 *
 * @module
 */
/** The -c command, started paused: it runs its program once the probes are attached. */
export class PausedCommand implements Disposable {
  readonly child: Deno.ChildProcess;
  readonly #fifo: string;
  readonly #dir: string;
  exited = false;
  #disposed = false;

  constructor(command: string) {
    this.#dir = Deno.makeTempDirSync({ prefix: "memleak-" });
    this.#fifo = `${this.#dir}/go`;
    const mk = new Deno.Command("mkfifo", { args: [this.#fifo] }).outputSync();
    if (!mk.success) throw new Error(`mkfifo ${this.#fifo} failed`);
    this.child = new Deno.Command("/bin/sh", {
      args: ["-c", `read -r _ < "$0"; exec ${command}`, this.#fifo],
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
    // Whatever ends this process (a load error too) ends a command not yet let run.
    globalThis.addEventListener("unload", () => this[Symbol.dispose]());
    this.child.status.then(() => {
      this.exited = true;
      // The command is done: report once more and end, as when Ctrl-C is hit.
      try {
        Deno.kill(Deno.pid, "SIGINT");
      } catch { /* already ending */ }
    });
  }

  /** Lets the command run. */
  go(): void {
    const f = Deno.openSync(this.#fifo, { write: true });
    f.writeSync(new TextEncoder().encode("\n"));
    f.close();
  }

  [Symbol.dispose](): void {
    if (this.#disposed) return;
    this.#disposed = true;
    if (!this.exited) {
      try {
        this.child.kill("SIGKILL");
      } catch { /* gone */ }
    }
    Deno.removeSync(this.#dir, { recursive: true });
  }
}
