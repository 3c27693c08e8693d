#!/usr/bin/env -S deno run -A
/**
 * btrfsdist: btrfs read, write, open and fsync latency, one log2 histogram per
 * operation (libbpf-tools fsdist -t btrfs; bcc btrfsdist).
 *
 * Events: raw_syscalls:sys_enter/sys_exit, with the task's file table to
 * keep only files on btrfs (the superblock's magic): no kprobes or fentry,
 * which libbpf-tools fsdist needs. A latency is the whole syscall's (path
 * look-up for opens, fd look-up for reads), not only the file system's own
 * function; see lib/fsslower/programs.ts.
 *
 *     # deno run -A tools/btrfsdist.ts 1 1
 *     Tracing btrfs operation latency... Hit Ctrl-C to end.
 *
 *     operation = 'read'
 *          usecs               : count    distribution
 *              0 -> 1          : 120      |****************************************|
 *              2 -> 3          : 7        |**                                      |
 *
 *     operation = 'fsync'
 *          usecs               : count    distribution
 *            ...
 *           512 -> 1023        : 2        |****************************************|
 */
import { fsDistTool } from "../lib/fsslower/dist.ts";

export const tool = fsDistTool("btrfs");

if (import.meta.main) await tool.main();
