#!/usr/bin/env -S deno run -A
/**
 * opensnoop: trace open(), openat() and openat2(), one line per call with
 * the file descriptor or error and the path asked for.
 *
 * Events: syscalls:sys_enter_open/openat/openat2 save the path pointer and
 * flags per thread; the matching sys_exit_* reads the path and sends the
 * record through a ring buffer (a perf buffer on kernels before 5.8).
 * Dropped events are counted and reported. Output and flags follow
 * libbpf-tools opensnoop (-f from bcc). -F/--full-path: a relative path is
 * shown after the caller's working directory, whose names the exit side
 * reads walking task->fs->pwd up to the root (crossing mount points, at most
 * 24 components of 64 bytes; a deeper one starts with "..."); a path
 * relative to a directory fd other than AT_FDCWD is shown as given.
 * -c/--callers: the two innermost user frames at the syscall (the enter side
 * takes them with bpf_get_stack), each on a line of its own under PATH, named
 * from the process's mappings when the line is printed ("[unknown]" once
 * the process is gone); with frame pointers the second frame is the caller's
 * caller when the first (a libc wrapper) keeps none, as in libbpf-tools.
 *
 *     # deno run -A tools/opensnoop.ts
 *     PID    COMM              FD ERR PATH
 *     1565   cat                3   0 /etc/ld.so.cache
 *     1565   cat               -1   2 /nonexistent
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import { durationFlag, eventTool } from "../lib/cli/drivers/events.ts";
import { flag, integer, nonEmpty, option, pidValue, tidValue } from "../lib/cli/flags.ts";
import { syscallTracepointExists } from "../lib/cli/syscalls.ts";
import { UsageError } from "../lib/cli/usage.ts";
import { type EventsDef, output, scratch } from "../lib/dsl/events.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import { type Probe, tracepoint } from "../lib/dsl/program.ts";
import { CTX, r0, r1, r10, r2, r3, r4, r7, r8, r9 } from "../lib/dsl/registers.ts";
import { char, defineSchema } from "../lib/dsl/schema.ts";
import { decodeCString, escapeText } from "../lib/format/escape.ts";
import { formatTimeOfDay } from "../lib/format/time.ts";
import { FileSymbolCache, ProcessSymbols } from "../lib/symbols/user.ts";

const PATH_SIZE = 256;
/**
 * Opens come fast (300k/s and more from one process here): 16 MiB holds
 * about 200k short records, enough to ride out the reader's pauses.
 */
const RING_BYTES = 16 << 20;

/** open(2) flags by name (x86-64 / asm-generic values), for -f. */
const OPEN_FLAGS: Record<string, number> = {
  O_WRONLY: 0o1,
  O_RDWR: 0o2,
  O_CREAT: 0o100,
  O_EXCL: 0o200,
  O_NOCTTY: 0o400,
  O_TRUNC: 0o1000,
  O_APPEND: 0o2000,
  O_NONBLOCK: 0o4000,
  O_DSYNC: 0o10000,
  O_ASYNC: 0o20000,
  O_DIRECT: 0o40000,
  O_LARGEFILE: 0o100000,
  O_DIRECTORY: 0o200000,
  O_NOFOLLOW: 0o400000,
  O_NOATIME: 0o1000000,
  O_CLOEXEC: 0o2000000,
  O_SYNC: 0o4010000,
  O_PATH: 0o10000000,
  O_TMPFILE: 0o20200000,
};

/** What the operator asked for. */
interface Options {
  timestamp: boolean;
  printUid: boolean;
  failed: boolean;
  pid?: number;
  tid?: number;
  uid?: number;
  duration?: number;
  name?: string;
  extended: boolean;
  /** -f: only calls whose flags have one of these bits. */
  flagMask?: number;
  /** -F: relative paths after the working directory. */
  fullPath: boolean;
  /** -c: the calling functions (two user frames). */
  callers: boolean;
}

/** -f: open flag names, comma-separated, as the bits they stand for. */
function openFlags(text: string): number {
  let mask = 0;
  for (const name of text.split(",")) {
    const bits = OPEN_FLAGS[name.toUpperCase()];
    if (bits === undefined) throw new UsageError(`unknown open flag '${name}'`);
    mask |= bits;
  }
  return mask;
}

// --- BPF side ---------------------------------------------------------------

/** One open, as sent to user space. */
const plainEvent = defineSchema("open_event", {
  pid: "u32",
  tid: "u32",
  uid: "u32",
  ret: "s32",
  flags: "u32",
  mode: "u32",
  /** -c: the two innermost user return addresses (zero without -c). */
  caller0: "u64",
  caller1: "u64",
  comm: char(16),
  path: char(PATH_SIZE),
});

const PLAIN_PATH_OFFSET = plainEvent.offset("path");

/** -F: the working directory's names, innermost first, one slot each (empty: a mount hop). */
const CWD_DEPTH = 24;
const CWD_NAME = 64;
const AT_FDCWD = -100;
/** -F's record: the same header, the working directory, then the path. */
const fullEvent = defineSchema("open_event_full", {
  pid: "u32",
  tid: "u32",
  uid: "u32",
  ret: "s32",
  flags: "u32",
  mode: "u32",
  caller0: "u64",
  caller1: "u64",
  comm: char(16),
  /** Slots of cwd used; complete: 1 when the walk reached the root (0: cut, or not relative). */
  cwd_slots: "u32",
  complete: "u32",
  cwd: char(CWD_DEPTH * CWD_NAME),
  path: char(PATH_SIZE),
});
const FULL_PATH_OFFSET = fullEvent.offset("path");
const CWD_OFFSET = fullEvent.offset("cwd");

/** What the enter side saves for the exit side, per thread. */
const openArgs = defineSchema("open_args", {
  path: "u64",
  flags: "u32",
  mode: "u32",
  /** The directory fd the path is relative to (AT_FDCWD for open(2)), as the u64 argument. */
  dfd: "u64",
  /** -c: bpf_get_stack's two user frames. */
  caller0: "u64",
  caller1: "u64",
});
const BPF_F_USER_STACK = 1 << 8;
const start = defineMap({
  name: "start",
  type: "hash",
  keySize: 4,
  valueSize: openArgs.size,
  maxEntries: 10240,
});

/** sys_enter_open*: filter, then save the path pointer, flags and mode by TID. */
function enterProgram(event: string, name: string, o: Options): Probe {
  const p = tracepoint("syscalls", event, { name });
  const key = p.stack(4), args = p.stack(openArgs.size);
  p.call("get_current_pid_tgid").mov(r7, r0);
  if (o.pid !== undefined) p.mov(r1, r7).rsh(r1, 32).returnIf(r1, "!=", o.pid);
  if (o.tid !== undefined) p.mov32(r1, r7).returnIf(r1, "!=", o.tid);
  if (o.uid !== undefined) p.call("get_current_uid_gid").mov32(r0, r0).returnIf(r0, "!=", o.uid);
  p.stackPtr(r9, args);
  p.ctx(r1, "filename");
  openArgs.store(p, r9, "path", r1);
  if (p.hasCtx("dfd")) p.ctx(r1, "dfd");
  else p.mov(r1, AT_FDCWD);
  openArgs.store(p, r9, "dfd", r1);
  if (p.hasCtx("how")) {
    // openat2: flags and mode are the first two u64 of struct open_how, in user memory.
    p.ctx(r8, "how");
    const how = p.stack(16);
    p.zeroStack(how, 16).stackPtr(r1, how).mov(r2, 16).mov(r3, r8).call("probe_read_user");
    p.load(r1, "u32", r10, how);
    openArgs.store(p, r9, "flags", r1);
    p.load(r1, "u32", r10, how + 8);
    openArgs.store(p, r9, "mode", r1);
  } else {
    p.ctx(r1, "flags");
    openArgs.store(p, r9, "flags", r1);
    p.ctx(r1, "mode");
    openArgs.store(p, r9, "mode", r1);
  }
  if (o.flagMask !== undefined) {
    openArgs.load(p, r1, r9, "flags");
    p.and(r1, o.flagMask).returnIf(r1, "==", 0);
  }
  const callersAt = args + openArgs.offset("caller0");
  p.store("u64", r10, callersAt, 0).store("u64", r10, callersAt + 8, 0);
  if (o.callers) {
    p.mov(r1, CTX).stackPtr(r2, callersAt).mov(r3, 16).mov(r4, BPF_F_USER_STACK);
    p.call("get_stack");
  }
  p.store("u32", r10, key, r7).update(start, key, args);
  return p.ret(0);
}

/**
 * sys_exit_open*: build the record in the per-CPU scratch record, read the
 * path into it, send the header and the path's bytes only (most paths are
 * short, so the ring buffer holds several times more events than with
 * fixed-size records).
 */
function exitProgram(event: string, name: string, o: Options, ch: EventsDef): Probe {
  const p = tracepoint("syscalls", event, { name });
  const openEvent = o.fullPath ? fullEvent : plainEvent;
  const PATH_OFFSET = o.fullPath ? FULL_PATH_OFFSET : PLAIN_PATH_OFFSET;
  const key = p.stack(4), cleanup = p.label();
  p.call("get_current_pid_tgid").mov(r7, r0).store("u32", r10, key, r7);
  p.lookup(start, key).returnIf(r0, "==", 0).mov(r9, r0);
  if (o.failed) p.ctx(r1, "ret").jumpIf(r1, "s>=", 0, cleanup);
  scratch(p, ch, r8, cleanup);
  p.mov(r1, r7).rsh(r1, 32);
  openEvent.store(p, r8, "pid", r1);
  openEvent.store(p, r8, "tid", r7);
  p.call("get_current_uid_gid");
  openEvent.store(p, r8, "uid", r0);
  p.ctx(r1, "ret");
  openEvent.store(p, r8, "ret", r1);
  openArgs.load(p, r1, r9, "flags");
  openEvent.store(p, r8, "flags", r1);
  openArgs.load(p, r1, r9, "mode");
  openEvent.store(p, r8, "mode", r1);
  openArgs.load(p, r1, r9, "caller0");
  openEvent.store(p, r8, "caller0", r1);
  openArgs.load(p, r1, r9, "caller1");
  openEvent.store(p, r8, "caller1", r1);
  openEvent.currentComm(p, r8, "comm");
  if (o.fullPath) readCwd(p, r8, r9);
  openArgs.load(p, r3, r9, "path");
  openEvent.readString(p, r8, "path", r3);
  p.if(r0, "s<", 1, () => {
    p.store("u8", r8, PATH_OFFSET, 0).mov(r0, 1); // unreadable: an empty path
  });
  p.clamp(r0, PATH_SIZE).add(r0, PATH_OFFSET).mov(r9, r0); // bounded, for the verifier
  output(p, ch, r8, r9);
  p.bind(cleanup).delete(start, key);
  return p.ret(0);
}

/**
 * -F: the working directory's names into the record, when the path is
 * relative to it (dfd AT_FDCWD; the path's first byte is checked in user
 * space). Walks dentry -> d_parent from task->fs->pwd; at the root of a mount
 * it goes on from the mountpoint in the parent mount (that hop leaves its
 * slot empty). `rec` is the record, `args` the saved arguments (kept).
 */
function readCwd(p: Probe, rec: typeof r8, args: typeof r9): void {
  const dentryAt = p.stack(8), mountAt = p.stack(8), tmp = p.stack(8);
  const done = p.label(), cut = p.label();
  /** dst = the pointer at struct.path of `base` (one stack slot for every read). */
  const read = (dst: typeof r1, base: typeof r1, struct: string, path: string) => {
    const off = p.layouts.structField(struct, path).offset;
    p.store("u64", r10, tmp, 0).mov(r3, base).add(r3, off).stackPtr(r1, tmp).mov(r2, 8);
    p.call("probe_read_kernel").load(dst, "u64", r10, tmp);
  };
  const mntInMount = p.layouts.structField("mount", "mnt").offset;
  fullEvent.store(p, rec, "cwd_slots", 0);
  fullEvent.store(p, rec, "complete", 0);
  openArgs.load(p, r1, args, "dfd");
  // the low 32 bits (the argument is an int, read as 4 or 8 bytes)
  p.mov32(r1, r1).mov64(r2, BigInt(AT_FDCWD >>> 0)).jumpIf(r1, "!=", r2, cut);
  p.call("get_current_task").mov(r7, r0);
  read(r7, r7, "task_struct", "fs");
  read(r1, r7, "fs_struct", "pwd.dentry");
  p.store("u64", r10, dentryAt, r1);
  read(r1, r7, "fs_struct", "pwd.mnt");
  p.sub(r1, mntInMount).store("u64", r10, mountAt, r1);
  for (let i = 0; i < CWD_DEPTH; i++) {
    const next = p.label(), notMountRoot = p.label();
    p.load(r1, "u64", r10, mountAt);
    read(r1, r1, "mount", "mnt.mnt_root");
    p.load(r7, "u64", r10, dentryAt).jumpIf(r7, "!=", r1, notMountRoot);
    // The root of a mount: go on from its mountpoint, in the parent mount.
    p.load(r7, "u64", r10, mountAt);
    read(r1, r7, "mount", "mnt_parent");
    p.jumpIf(r1, "==", r7, done); // the root mount's root: "/"
    p.store("u64", r10, mountAt, r1);
    read(r1, r7, "mount", "mnt_mountpoint");
    p.store("u64", r10, dentryAt, r1);
    p.store("u8", rec, CWD_OFFSET + i * CWD_NAME, 0);
    fullEvent.store(p, rec, "cwd_slots", i + 1);
    p.goto(next);
    p.bind(notMountRoot);
    read(r1, r7, "dentry", "d_parent");
    p.jumpIf(r1, "==", r7, done); // a root without a mount above (a detached tree)
    p.store("u64", r10, dentryAt, r1);
    read(r3, r7, "dentry", "d_name.name");
    p.mov(r1, rec).add(r1, CWD_OFFSET + i * CWD_NAME).mov(r2, CWD_NAME);
    p.call("probe_read_kernel_str");
    fullEvent.store(p, rec, "cwd_slots", i + 1);
    p.bind(next);
  }
  p.goto(cut); // deeper than CWD_DEPTH: not complete
  p.bind(done);
  fullEvent.store(p, rec, "complete", 1);
  p.bind(cut);
}

/** The syscalls this kernel has, with their program names (15 characters at most). */
const SYSCALLS = [
  ["open", "opensnoop_in", "opensnoop_out"],
  ["openat", "opensnoop_atin", "opensnoop_atout"],
  ["openat2", "opensnoop_a2in", "opensnoop_a2out"],
] as const;

function buildPrograms(o: Options, ch: EventsDef) {
  const programs: Probe[] = [];
  for (const [syscall, enterName, exitName] of SYSCALLS) {
    if (!syscallTracepointExists(`sys_enter_${syscall}`)) continue; // no open(2) on arm64; no openat2 before 5.6
    programs.push(
      enterProgram(`sys_enter_${syscall}`, enterName, o),
      exitProgram(`sys_exit_${syscall}`, exitName, o, ch),
    );
  }
  return programs.map((p) => p.build());
}

// --- user side --------------------------------------------------------------

const O_CREAT = OPEN_FLAGS.O_CREAT;
const O_TMPFILE = OPEN_FLAGS.O_TMPFILE;

function header(o: Options): string {
  return (o.timestamp ? "TIME".padEnd(8) + " " : "") + (o.printUid ? "UID".padEnd(7) + " " : "") +
    `${"PID".padEnd(6)} ${"COMM".padEnd(16)}  FD ERR ` +
    (o.extended ? `${"FLAGS".padEnd(8)} ${"MODE".padEnd(5)} ` : "") +
    (o.callers ? "PATH/CALLER\n" : "PATH\n");
}

/** libbpf-tools prints the mode only when it means something (O_CREAT, O_TMPFILE). */
function formatFlagsMode(flags: number, mode: number): string {
  const octal = (n: number, w: number) => n.toString(8).padStart(w, "0");
  const hasMode = mode !== 0 || (flags & O_CREAT) !== 0 || (flags & O_TMPFILE) === O_TMPFILE;
  return `${octal(flags, 8)} ${hasMode ? octal(mode, 4) + " " : "n/a  "}`;
}

/** The record's fields, the path with the working directory before it under -F. */
function decodeOpen(data: Uint8Array, o: Options) {
  if (!o.fullPath) return plainEvent.decode(data);
  const e = fullEvent.decode(data);
  if (e.path.startsWith("/") || (e.cwd_slots === 0 && e.complete === 0)) return e;
  const names: string[] = [];
  for (let i = Math.min(e.cwd_slots, CWD_DEPTH) - 1; i >= 0; i--) {
    const name = decodeCString(
      data.subarray(CWD_OFFSET + i * CWD_NAME, CWD_OFFSET + (i + 1) * CWD_NAME),
    );
    if (name !== "") names.push(name);
  }
  const cwd = (e.complete ? "" : "...") + names.map((n) => "/" + n).join("");
  return { ...e, path: `${cwd}/${e.path}` };
}

const symbolFiles = new FileSymbolCache();

/** -c: the callers' names, from the process's mappings now (read afresh: a PID may exec). */
function callerNames(pid: number, addresses: bigint[]): string[] {
  const present = addresses.filter((a) => a !== 0n);
  if (present.length === 0) return [];
  const process = new ProcessSymbols(pid, symbolFiles);
  return present.map((a) => process.nameOf(a));
}

function textLine(data: Uint8Array, o: Options): string | undefined {
  const e = decodeOpen(data, o);
  if (o.name !== undefined && !e.comm.includes(o.name)) return;
  const fd = e.ret >= 0 ? e.ret : -1, err = e.ret >= 0 ? 0 : -e.ret;
  const before = (o.timestamp ? formatTimeOfDay(new Date()).padEnd(8) + " " : "") +
    (o.printUid ? String(e.uid).padEnd(7) + " " : "") +
    `${String(e.pid).padEnd(6)} ${escapeText(e.comm).padEnd(16)} ` +
    `${String(fd).padStart(3)} ${String(err).padStart(3)} ` +
    (o.extended ? formatFlagsMode(e.flags, e.mode) : "");
  const line = before + escapeText(e.path) + "\n";
  if (!o.callers) return line;
  // Each caller on its own line, under PATH.
  return line + callerNames(e.pid, [e.caller0, e.caller1])
    .map((name) => " ".repeat(before.length) + escapeText(name) + "\n").join("");
}

function jsonFields(data: Uint8Array, o: Options) {
  const e = decodeOpen(data, o);
  const { pid, tid, uid, comm, ret, flags, mode, path } = e;
  if (o.name !== undefined && !comm.includes(o.name)) return;
  const fd = ret >= 0 ? ret : -1, err = ret >= 0 ? 0 : -ret;
  const callers = o.callers ? { callers: callerNames(pid, [e.caller0, e.caller1]) } : {};
  return { pid, tid, uid, comm, fd, err, flags, mode, path, ...callers };
}

export const tool = eventTool({
  name: "opensnoop",
  summary: "Trace open family syscalls.",
  examples: [
    ["opensnoop", "trace all open() syscalls"],
    ["opensnoop -T", "include timestamps"],
    ["opensnoop -U", "include UID"],
    ["opensnoop -x", "only show failed opens"],
    ["opensnoop -p 181", "only trace PID 181"],
    ["opensnoop -t 123", "only trace TID 123"],
    ["opensnoop -u 1000", "only trace UID 1000"],
    ["opensnoop -d 10", "trace for 10 seconds only"],
    ["opensnoop -n main", 'only print process names containing "main"'],
    ["opensnoop -F", "show full paths (relative ones after the cwd)"],
    ["opensnoop -c", "show the calling functions"],
    ["opensnoop -e", "show extended fields"],
    ["opensnoop -f O_WRONLY", "only print calls for writing"],
  ],
  flags: {
    timestamp: flag("print timestamp (HH:MM:SS)", "T"),
    printUid: flag("print UID", "U", "print-uid"),
    failed: flag("failed opens only", "x"),
    pid: option("PID", "process ID to trace", pidValue, { short: "p" }),
    tid: option("TID", "thread ID to trace", tidValue, { short: "t" }),
    uid: option("UID", "user ID to trace", integer(0, 0xfffffffe, "UID"), { short: "u" }),
    duration: durationFlag,
    name: option("NAME", "trace process names containing this", nonEmpty, { short: "n" }),
    extended: flag("print extended fields: FLAGS, MODE", "e", "extended-fields"),
    flagMask: option("FLAG", "filter on flags argument, e.g. O_WRONLY,O_CREAT", openFlags, {
      short: "f",
      long: "flag-filter",
    }),
    fullPath: flag("show full path (relative ones after the cwd)", "F", "full-path"),
    callers: flag("show calling functions", "c"),
  },
  variants: [
    ["-x"],
    ["-p", "1"],
    ["-t", "1"],
    ["-u", "0"],
    ["-d", "1"],
    ["-n", "sh"],
    ["-e"],
    ["-f", "O_WRONLY"],
    ["-F"],
    ["-c"],
  ],
}, {
  recordSize: fullEvent.size,
  ringBytes: RING_BYTES,
  scratch: true,
  build: buildPrograms,
  header,
  text: textLine,
  json: jsonFields,
  durationSeconds: (o) => o.duration,
});

if (import.meta.main) await tool.main();
