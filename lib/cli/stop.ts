/**
 * Ctrl-C and SIGTERM: the tool stops its interval loop, prints what it has
 * (as the bcc tools do on Ctrl-C) and exits through the normal cleanup path.
 */
const SIGNALS: Deno.Signal[] = ["SIGINT", "SIGTERM"];

/** The longest wait one timer can take (a signed 32-bit count of milliseconds). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Resolves when the operator asks the tool to stop. */
export class StopSignal {
  #resolve!: () => void;
  /** True once a signal arrived or stop() was called. */
  stopped = false;
  /** Resolves on the first stop, to race against waits. */
  readonly promise: Promise<void>;
  readonly #handler = () => this.stop();

  constructor() {
    this.promise = new Promise((resolve) => (this.#resolve = resolve));
    for (const sig of SIGNALS) Deno.addSignalListener(sig, this.#handler);
  }

  /** Stops as a signal would (a duration elapsed, a child exited). */
  stop(): void {
    this.stopped = true;
    this.#resolve();
  }

  /** Removes the signal handlers (a second Ctrl-C then kills the process, as usual). */
  dispose(): void {
    for (const sig of SIGNALS) Deno.removeSignalListener(sig, this.#handler);
  }

  /** `using stop = new StopSignal()`: the handlers go when the scope ends. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /**
   * Sleeps `ms`, or less if stopped meanwhile. Long waits are chunked: one
   * timer cannot wait longer than 2^31-1 ms (it would fire at once).
   */
  async sleep(ms: number): Promise<void> {
    const end = performance.now() + ms;
    do {
      const left = Math.min(end - performance.now(), MAX_TIMER_MS);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, left)))),
        this.promise,
      ]);
      clearTimeout(timer);
    } while (!this.stopped && performance.now() < end);
  }
}

/**
 * The bcc interval loop: yields once per `interval` seconds, `count` times;
 * without an interval, once when stopped. A stop yields one last time, so the
 * tool prints what it has.
 */
export async function* intervals(
  stop: StopSignal,
  interval?: number,
  count?: number,
): AsyncGenerator<number> {
  for (let i = 1; count === undefined || i <= count; i++) {
    if (interval === undefined) await stop.promise;
    else await stop.sleep(interval * 1000);
    yield i;
    if (stop.stopped) return;
  }
}
