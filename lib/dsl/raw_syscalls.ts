/**
 * Programs on raw_syscalls:sys_enter / sys_exit: one attachment sees every
 * syscall, and the program picks the ones it wants by number.
 *
 * Why not one syscalls:sys_enter_<name> tracepoint per syscall: each attached
 * tracepoint costs about 75 ms to detach (two RCU grace periods), so a tool
 * on 17 syscalls' enter and exit took 2.5 s to exit after Ctrl-C; two
 * attachments take a tenth of that. The price is one short program run per
 * syscall of every process (an id compared against a few constants).
 *
 * Syscall numbers are per architecture (Deno runs on x86-64 and arm64, whose
 * arm64 numbers are asm-generic's). The record's layout is the same on
 * every architecture: `long id; unsigned long args[6]` at enter,
 * `long id; long ret` at exit. 32-bit (ia32) syscalls of compat processes
 * use another numbering and are skipped ({@link skipCompatSyscall}).
 *
 * @example
 * ```ts
 * const p = rawSyscallProbe("enter", "mytool_enter");
 * const read = p.label(), other = p.label();
 * p.ctx(r1, "id");
 * jumpToSyscalls(p, r1, [[["read", "pread64"], read]], other);
 * p.bind(read);
 * syscallArg(p, r7, 0); // the fd
 * ```
 *
 * @module
 */
import type { Label } from "./builder.ts";
import { type Probe, tracepoint } from "./program.ts";
import { CTX, r0, r1, type Reg } from "./registers.ts";

/** Syscall numbers: x86-64 (arch/x86/entry/syscalls/syscall_64.tbl). */
const X86_64: Record<string, number> = {
  read: 0,
  write: 1,
  open: 2,
  pread64: 17,
  pwrite64: 18,
  readv: 19,
  writev: 20,
  fsync: 74,
  fdatasync: 75,
  creat: 85,
  mknod: 133,
  openat: 257,
  mknodat: 259,
  preadv: 295,
  pwritev: 296,
  open_by_handle_at: 304,
  preadv2: 327,
  pwritev2: 328,
  openat2: 437,
};

/** Syscall numbers: arm64 (include/uapi/asm-generic/unistd.h; no open, creat or mknod). */
const ARM64: Record<string, number> = {
  mknodat: 33,
  openat: 56,
  read: 63,
  write: 64,
  readv: 65,
  writev: 66,
  pread64: 67,
  pwrite64: 68,
  preadv: 69,
  pwritev: 70,
  fsync: 82,
  fdatasync: 83,
  open_by_handle_at: 265,
  preadv2: 286,
  pwritev2: 287,
  openat2: 437,
};

/** x86 thread_info.status bit: the current syscall is a 32-bit (ia32) one. */
const TS_COMPAT = 0x0002;

/** The syscall numbers of this machine's architecture. */
export function syscallTable(arch: string = Deno.build.arch): Record<string, number> {
  if (arch === "x86_64") return X86_64;
  if (arch === "aarch64") return ARM64;
  throw new Error(`syscall numbers for ${arch} are not known`);
}

/** The syscall's number here, or undefined when this architecture does not have it. */
export function syscallNr(name: string, arch: string = Deno.build.arch): number | undefined {
  return syscallTable(arch)[name];
}

/** A program on raw_syscalls:sys_enter (fields id, args) or sys_exit (fields id, ret). */
export function rawSyscallProbe(side: "enter" | "exit", name: string): Probe {
  return tracepoint("raw_syscalls", side === "enter" ? "sys_enter" : "sys_exit", { name });
}

/** dst = argument `index` (0-5) of the syscall, at sys_enter. */
export function syscallArg(p: Probe, dst: Reg, index: number): void {
  if (!Number.isInteger(index) || index < 0 || index > 5) {
    throw new Error(`syscall argument index ${index} is not in 0..5`);
  }
  if (p.context.kind !== "tracepoint") throw new Error("syscallArg: not a raw_syscalls program");
  const args = p.context.format.field("args");
  p.load(dst, "u64", CTX, args.offset + 8 * index);
}

/**
 * Jumps to the label of the first group whose syscalls include `id` (a
 * register holding the syscall number); to `otherwise` when none does.
 * Syscalls this architecture lacks are left out.
 */
export function jumpToSyscalls(
  p: Probe,
  id: Reg,
  groups: [names: readonly string[], target: Label][],
  otherwise: Label,
): void {
  for (const [names, target] of groups) {
    for (const name of names) {
      const nr = syscallNr(name);
      if (nr !== undefined) p.jumpIf(id, "==", nr, target);
    }
  }
  p.goto(otherwise);
}

/**
 * Jumps to `skip` when the current syscall is a 32-bit compat one (x86-64
 * ia32 processes: their numbers mean other syscalls). Clobbers r0-r5.
 */
export function skipCompatSyscall(p: Probe, skip: Label): void {
  if (Deno.build.arch !== "x86_64") return;
  p.call("get_current_task").mov(r1, r0);
  p.field(r1, r1, "task_struct", "thread_info.status");
  p.and(r1, TS_COMPAT).jumpIf(r1, "!=", 0, skip);
}
