/**
 * Which syscall tracepoints this kernel has: a tool traces the syscalls that
 * exist (no open(2) on arm64, no openat2 before 5.6, execveat since 3.19).
 *
 * @module
 */
import { tracepoint } from "../dsl/program.ts";

/** Whether syscalls:`name` exists here (sys_enter_openat2, say). */
export function syscallTracepointExists(name: string): boolean {
  try {
    tracepoint("syscalls", name);
    return true;
  } catch {
    return false;
  }
}
