/**
 * The single FFI binding to libc.so.6: the calls libbpf has no wrapper for
 * (perf_event_open through syscall(2), close, open), memory mapping, epoll,
 * and mount(2). Opened lazily, each symbol bound on its first call, so a tool
 * pays only for the calls it makes.
 *
 * @module
 */
import { firstLine, lazySymbols, LibraryMissingError } from "./ffi.ts";

const LIBC_SYMBOLS = {
  // long syscall(long number, ...): called with integer arguments only, which
  // the x86-64 and arm64 calling conventions pass exactly as for a plain call.
  syscall: { parameters: ["i64", "buffer", "i32", "i32", "i32", "u64"], result: "i64" },
  close: { parameters: ["i32"], result: "i32" },
  open: { parameters: ["buffer", "i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
  mmap: { parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"], result: "pointer" },
  munmap: { parameters: ["pointer", "usize"], result: "i32" },
  sysconf: { parameters: ["i32"], result: "i64" },
  epoll_create1: { parameters: ["i32"], result: "i32" },
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  /** Runs on a worker thread: the Promise resolves with the return value. */
  epoll_wait: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32", nonblocking: true },
  /** poll(NULL, 0, ms): a plain sleep, on a worker thread. */
  poll: { parameters: ["pointer", "u64", "i32"], result: "i32", nonblocking: true },
  mount: { parameters: ["buffer", "buffer", "buffer", "u64", "pointer"], result: "i32" },
  clock_gettime: { parameters: ["i32", "buffer"], result: "i32" },
} as const;

type Libc = Deno.DynamicLibrary<typeof LIBC_SYMBOLS>["symbols"];

let symbols: Libc | undefined;

/** The libc symbols (the library opens when the first one is called). */
export function libc(): Libc {
  symbols ??= lazySymbols(
    "libc.so.6",
    LIBC_SYMBOLS,
    (e) => new LibraryMissingError(`cannot load libc.so.6 (${firstLine(e)})`),
  );
  return symbols;
}

/** libc's errno after a failed libc call. */
export function lastErrno(): number {
  const p = libc().__errno_location();
  return p ? new Deno.UnsafePointerView(p).getInt32() : 0;
}

const SC_PAGESIZE = 30;
let pageBytes: number | undefined;

/** The system page size. */
export function pageSize(): number {
  pageBytes ??= Number(libc().sysconf(SC_PAGESIZE));
  return pageBytes;
}

/** mmap's MAP_FAILED, (void *)-1. */
const MAP_FAILED = 0xffffffffffffffffn;

/** A memory mapping: its address, length, and the bytes as an ArrayBuffer. */
export interface Mapping {
  ptr: Deno.PointerObject;
  bytes: number;
  buffer: ArrayBuffer;
}

/** mmap(NULL, bytes, prot, flags, fd, offset); returns the errno on failure. */
export function mmap(
  fd: number,
  bytes: number,
  prot: number,
  flags: number,
  offset = 0,
): Mapping | { errno: number } {
  const ptr = libc().mmap(null, BigInt(bytes), prot, flags, fd, BigInt(offset));
  if (ptr === null || BigInt(Deno.UnsafePointer.value(ptr)) === MAP_FAILED) {
    return { errno: lastErrno() };
  }
  return { ptr, bytes, buffer: Deno.UnsafePointerView.getArrayBuffer(ptr, bytes) };
}

/** Undoes an mmap. */
export function munmap(m: Mapping): void {
  libc().munmap(m.ptr, BigInt(m.bytes));
}

const CLOCK_MONOTONIC = 1;

/** CLOCK_MONOTONIC in nanoseconds: the clock of bpf_ktime_get_ns(), to age what a program stamped. */
export function monotonicNs(): bigint {
  const ts = new BigInt64Array(2);
  libc().clock_gettime(CLOCK_MONOTONIC, new Uint8Array(ts.buffer));
  return ts[0] * 1_000_000_000n + ts[1];
}
