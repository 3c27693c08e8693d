/**
 * Ownership of kernel file descriptors. Each map, program, perf event, link
 * and event reader owns its descriptor, and whoever creates one closes it:
 * a Session closes its links, programs and maps (in that order); a link
 * closes the perf events it was made through; an event reader its epoll fd
 * and perf buffers. There is no process-wide registry: an object nobody
 * closes is freed by the kernel when the process exits.
 */
import { libc } from "./libc.ts";

/** A kernel object that owns one file descriptor. */
export class OwnedFd implements Disposable {
  #fd: number;
  /** Takes ownership of `fd`; `kind` and `label` name it in errors ("map counts"). */
  constructor(fd: number, readonly kind: string, readonly label: string) {
    this.#fd = fd;
  }
  /** The descriptor; throws after close. */
  get fd(): number {
    if (this.#fd < 0) throw new Error(`${this.kind} ${this.label} is closed`);
    return this.#fd;
  }
  /** True after close(). */
  get closed(): boolean {
    return this.#fd < 0;
  }
  /** Closes the descriptor once; later calls do nothing. */
  close(): void {
    if (this.#fd < 0) return;
    libc().close(this.#fd);
    this.#fd = -1;
  }
  /** `using map = createMap(...)`: closed at the end of the scope. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** libbpf's low-level calls return -errno; this turns that into a fd or throws. */
export function checkFd(ret: number, onError: (errno: number) => Error): number {
  if (ret < 0) throw onError(-ret);
  return ret;
}
