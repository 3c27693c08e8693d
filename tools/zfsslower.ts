#!/usr/bin/env -S deno run -A
/**
 * zfsslower: trace ZFS reads, writes, opens and fsyncs slower than a
 * threshold (default 10 ms; 0 shows every one), with the size, offset and
 * file name of each.
 *
 * Events: raw_syscalls:sys_enter and sys_exit, picking read, write,
 * pread64, pwrite64, readv, writev, preadv(2), pwritev(2), open, openat,
 * openat2, creat, open_by_handle_at, fsync and fdatasync, and keeping only
 * files whose superblock is ZFS's (found through the task's file table
 * with BTF offsets). No kprobes or fentry needed; the latency is the
 * syscall's. The shared implementation is lib/fsslower/; columns follow
 * bcc zfsslower, CSV and op letters libbpf-tools fsslower. Where ZFS is
 * not loaded or not mounted it says so in one line and traces anyway.
 *
 *     # deno run -A tools/zfsslower.ts 1
 *     Tracing ZFS operations slower than 1 ms
 *     TIME     COMM           PID    T BYTES   OFF_KB   LAT(ms) FILENAME
 *     10:15:02 dd             4121   W 1048576 2048        3.27 big.out
 *     10:15:02 dd             4121   F 0       0          51.84 big.out
 */
import { fsSlowerTool } from "../lib/fsslower/main.ts";

export const tool = fsSlowerTool("zfs");

if (import.meta.main) await tool.main();
