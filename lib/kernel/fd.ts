/**
 * Ownership of kernel file descriptors. Every map, program, BTF object, perf
 * event and link the toolkit creates is registered here and closed by
 * `closeAll()` on any exit path, so nothing stays attached or loaded.
 * (The kernel also frees them when the process dies; closing explicitly makes
 * the order deterministic: links first, then programs, then maps.)
 */
import { c } from "./libbpf.ts";

/** A kernel object that owns one file descriptor. */
export class OwnedFd {
  #fd: number;
  /** Registers `fd` for closeAll(); `kind` and `label` name it in errors ("map counts"). */
  constructor(fd: number, readonly kind: string, readonly label: string) {
    this.#fd = fd;
    open.add(this);
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
    c().close(this.#fd);
    this.#fd = -1;
    open.delete(this);
  }
}

const open = new Set<OwnedFd>();

/** Closes every descriptor still open, newest first (links before programs before maps). */
export function closeAll(): void {
  for (const obj of [...open].reverse()) obj.close();
}

/** How many descriptors are still open (tests use it to check cleanup). */
export function openCount(): number {
  return open.size;
}

/** libbpf's low-level calls return -errno; this turns that into a fd or throws. */
export function checkFd(ret: number, onError: (errno: number) => Error): number {
  if (ret < 0) throw onError(-ret);
  return ret;
}
