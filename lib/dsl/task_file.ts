/**
 * The open file behind a file descriptor of the current task, found the way
 * the kernel's fdget() does: current->files->fdt->fd[fd]. For programs that
 * see a syscall's fd (syscall tracepoints) and need to know what it refers
 * to: its file system (f_inode->i_sb), its name (f_path.dentry), its position.
 *
 * Every step is a bpf_probe_read_kernel with offsets from vmlinux BTF, so it
 * works from classic tracepoints on any kernel with BTF, and a freed or NULL
 * pointer on the way reads as 0 instead of faulting.
 *
 * @example
 * ```ts
 * const p = tracepoint("syscalls", "sys_enter_read");
 * const skip = p.label();
 * p.ctx(r9, "fd");
 * currentFileOfFd(p, r8, r9, skip); // r8 = struct file *
 * p.field(r1, r8, "file", "f_inode->i_sb->s_magic");
 * ```
 *
 * @module
 */
import type { Label } from "./builder.ts";
import type { Probe } from "./program.ts";
import { r0, r1, r10, r2, r3, type Reg } from "./registers.ts";

/**
 * dst = the `struct file *` open at descriptor `fd` (its low 32 bits) in the
 * current task, or a jump to `missing` when there is none (fd out of range,
 * closed, or a kernel thread without a file table). `dst` and `fd` must be
 * distinct callee-saved registers (r7-r9); `fd` is left as it was.
 * Clobbers r0-r5.
 */
export function currentFileOfFd(p: Probe, dst: Reg, fd: Reg, missing: Label): void {
  if (dst.n === fd.n) throw new Error("currentFileOfFd: dst and fd must be different registers");
  p.call("get_current_task").mov(dst, r0);
  p.field(dst, dst, "task_struct", "files->fdt");
  // fdt->fd has max_fds entries (0 when anything above was unreadable)
  p.field(r1, dst, "fdtable", "max_fds");
  p.mov32(r2, fd).jumpIf(r2, ">=", r1, missing);
  p.field(dst, dst, "fdtable", "fd");
  p.mov32(r1, fd).lsh(r1, 3).add(dst, r1);
  readKernelU64(p, dst, dst);
  p.jumpIf(dst, "==", 0, missing);
}

/**
 * dst = the u64 at kernel address `addr` (0 when unreadable), with
 * bpf_probe_read_kernel. Clobbers r0-r5; `addr` may be `dst`.
 */
export function readKernelU64(p: Probe, dst: Reg, addr: Reg): void {
  const slot = p.stack(8);
  p.store("u64", r10, slot, 0);
  p.mov(r3, addr).stackPtr(r1, slot).mov(r2, 8).call("probe_read_kernel");
  p.load(dst, "u64", r10, slot);
}
