/**
 * The socket behind a file descriptor of the current task:
 * current->files->fdt->fd[fd]->private_data->sk, for programs on a socket
 * system call's tracepoints (bind, listen, connect) that see only the fd.
 * A descriptor that is not a socket is not told apart here: callers check
 * the sock's family and protocol, as a non-socket file's private_data is no sock.
 * Every step is a bpf_probe_read_kernel (offsets from vmlinux BTF), so a
 * closed descriptor or a NULL on the way jumps to `missing` instead of faulting.
 *
 * @example
 * ```ts
 * const p = tracepoint("syscalls", "sys_exit_listen");
 * const skip = p.label();
 * p.load(r9, "u64", r10, savedFd);
 * currentSocketOfFd(p, r8, r9, skip); // r8 = struct sock *
 * p.field(r1, r8, "sock", "__sk_common.skc_family");
 * ```
 *
 * @module
 */
import type { Label } from "./builder.ts";
import type { Probe } from "./program.ts";
import type { Reg } from "./registers.ts";
import { currentFileOfFd } from "./task_file.ts";

/**
 * dst = the `struct sock *` of the socket open at descriptor `fd` (low 32
 * bits) in the current task, or a jump to `missing`. `dst` and `fd` must be
 * distinct r7-r9; `fd` is left as it was. Clobbers r0-r5.
 */
export function currentSocketOfFd(p: Probe, dst: Reg, fd: Reg, missing: Label): void {
  currentFileOfFd(p, dst, fd, missing);
  p.field(dst, dst, "file", "private_data").jumpIf(dst, "==", 0, missing);
  p.field(dst, dst, "socket", "sk").jumpIf(dst, "==", 0, missing);
}
