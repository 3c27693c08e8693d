#!/usr/bin/env -S deno run -A
/**
 * killsnoop: trace signals sent by kill(), tkill() and tgkill(), one line per
 * call with the sender, the signal, the target and the return value.
 *
 * Events: syscalls:sys_enter/sys_exit_kill, _tkill and _tgkill (the enter
 * side saves the call per thread, the exit side adds the result). It is
 * sigsnoop with -k always on (tools/sigsnoop.ts), as libbpf-tools' killsnoop
 * is its sigsnoop run under that name; the flags and columns are the same.
 *
 *     # deno run -A tools/killsnoop.ts
 *     TIME     PID     COMM             SIG       TPID    RESULT
 *     10:10:44 24630   bash             10        24719   0
 *     10:10:44 24630   bash             0         999999  -3
 */
import { signalTool } from "./sigsnoop.ts";

export const tool = signalTool("killsnoop");

if (import.meta.main) await tool.main();
