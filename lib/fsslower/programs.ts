/**
 * The BPF side of the fsslower tools, built from syscall tracepoints: this
 * path needs neither kprobes nor fentry (libbpf-tools fsslower needs one of
 * them, on the file system's read_iter/write_iter/open/fsync functions).
 *
 * - sys_enter of read, write, pread64, pwrite64, readv, writev, preadv,
 *   pwritev, preadv2, pwritev2, fsync, fdatasync: look the fd up in the
 *   task's file table, keep going only when the file's superblock has the
 *   traced file system's magic, and save (time, file, position) per thread.
 * - sys_enter of open, openat, openat2, creat, open_by_handle_at: save the
 *   time (the file does not exist yet).
 * - the matching sys_exit: the latency; for opens, the new fd's file (a
 *   regular file on the traced file system, not O_PATH); when slower than
 *   the threshold, one record with the size (the return value), offset and
 *   file name (its dentry's name) through the event channel.
 *
 * What differs from the kprobe tools: latency is the whole syscall's (path
 * look-up for opens, fd look-up and locking for reads), not only the file
 * system function's; I/O that does not come through these syscalls
 * (io_uring, sendfile, splice, copy_file_range, mmap) is not seen; fsyncs
 * done inside O_SYNC writes are part of the write, not separate events.
 *
 * @module
 */
import type { Label } from "../dsl/builder.ts";
import { defineEvents, type EventsDef, reserve, submit } from "../dsl/events.ts";
import { defineMap } from "../dsl/maps.ts";
import { type Probe, tracepoint } from "../dsl/program.ts";
import { r0, r1, r10, r2, r7, r8, r9 } from "../dsl/registers.ts";
import { char, defineSchema } from "../dsl/schema.ts";
import { currentFileOfFd } from "../dsl/task_file.ts";
import type { BuiltProgram } from "../dsl/builder.ts";
import type { EventBufferKind } from "../dsl/events.ts";
import type { FileSystem } from "./filesystems.ts";

/** The operations, as libbpf-tools numbers them (enum fs_file_op). */
export const FsOp = { read: 0, write: 1, open: 2, fsync: 3 } as const;
/** One of {@link FsOp}. */
export type FsOpCode = (typeof FsOp)[keyof typeof FsOp];

/** What an fsync reports as its size: the range it covers, 0..LLONG_MAX (libbpf-tools). */
export const WHOLE_FILE = 0x7fffffffffffffffn;
/** libbpf-tools' FILE_NAME_LEN (bcc: DNAME_INLINE_LEN). */
export const FILE_NAME_LEN = 32;

/** One slow operation, as sent to user space (libbpf-tools' struct event). */
export const fsEvent = defineSchema("fs_event", {
  endNs: "u64",
  deltaUs: "u64",
  offset: "s64",
  size: "s64",
  pid: "u32",
  op: "u32",
  task: char(16),
  file: char(FILE_NAME_LEN),
});

/** What the enter side saves for the exit side, per thread. */
const pending = defineSchema("fs_pending", { ts: "u64", file: "u64", pos: "s64", op: "u32" });

const starts = defineMap({
  name: "fss_starts",
  type: "hash",
  keySize: 4,
  valueSize: pending.size,
  maxEntries: 8192,
});

/** Where a syscall's file position comes from. */
type PosSource =
  | { from: "file" } // f_pos (read, write, readv, writev)
  | { from: "arg"; field: string } // pread64's pos, preadv's pos_l
  | { from: "arg_or_file"; field: string }; // preadv2: pos_l, or f_pos when it is -1

/** A traced syscall and its program names (15 characters at most). */
interface Syscall {
  name: string;
  op: FsOpCode;
  pos?: PosSource;
  short: string;
}

const FILE_POS = { from: "file" } as const;
const SYSCALLS: Syscall[] = [
  { name: "read", op: FsOp.read, pos: FILE_POS, short: "rd" },
  { name: "write", op: FsOp.write, pos: FILE_POS, short: "wr" },
  { name: "pread64", op: FsOp.read, pos: { from: "arg", field: "pos" }, short: "prd" },
  { name: "pwrite64", op: FsOp.write, pos: { from: "arg", field: "pos" }, short: "pwr" },
  { name: "readv", op: FsOp.read, pos: FILE_POS, short: "rdv" },
  { name: "writev", op: FsOp.write, pos: FILE_POS, short: "wrv" },
  { name: "preadv", op: FsOp.read, pos: { from: "arg", field: "pos_l" }, short: "prdv" },
  { name: "pwritev", op: FsOp.write, pos: { from: "arg", field: "pos_l" }, short: "pwrv" },
  { name: "preadv2", op: FsOp.read, pos: { from: "arg_or_file", field: "pos_l" }, short: "prdv2" },
  {
    name: "pwritev2",
    op: FsOp.write,
    pos: { from: "arg_or_file", field: "pos_l" },
    short: "pwrv2",
  },
  { name: "fsync", op: FsOp.fsync, short: "fsync" },
  { name: "fdatasync", op: FsOp.fsync, short: "fdsync" },
  { name: "open", op: FsOp.open, short: "open" },
  { name: "openat", op: FsOp.open, short: "openat" },
  { name: "openat2", op: FsOp.open, short: "openat2" },
  { name: "creat", op: FsOp.open, short: "creat" },
  { name: "open_by_handle_at", op: FsOp.open, short: "openbh" },
];

/** Program names start with this (for tests that check nothing stays loaded). */
export const PROGRAM_PREFIX = "fss_";

/** What the programs filter on. */
export interface FsSlowerConfig {
  fs: FileSystem;
  /** Operations taking this long or less are not reported (libbpf-tools: delta <= min). */
  minNs: bigint;
  /** Only this process (TGID). */
  pid?: number;
  /**
   * The tracer's own process, never traced: its output written to a file
   * on the traced file system would otherwise feed itself.
   */
  selfPid?: number;
}

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const O_PATH = 0o10000000;

/** The event channel the programs send records through. */
export function fsEvents(kind: EventBufferKind): EventsDef {
  return defineEvents({ kind, recordSize: fsEvent.size, ringBytes: 1 << 20, name: "fss_events" });
}

/** Every program, for the syscalls this kernel has. */
export function buildFsSlowerPrograms(cfg: FsSlowerConfig, ch: EventsDef): BuiltProgram[] {
  const programs: Probe[] = [];
  for (const sc of SYSCALLS) {
    if (!hasSyscallTracepoint(sc.name)) continue; // no open(2) on arm64, no openat2 before 5.6
    programs.push(enterProgram(sc, cfg), exitProgram(sc, cfg, ch));
  }
  return programs.map((p) => p.build());
}

function hasSyscallTracepoint(name: string): boolean {
  try {
    tracepoint("syscalls", `sys_enter_${name}`);
    tracepoint("syscalls", `sys_exit_${name}`);
    return true;
  } catch {
    return false;
  }
}

/** Returns unless the current process is the one asked for (and never for the tracer). */
function pidFilter(p: Probe, cfg: FsSlowerConfig): void {
  if (cfg.pid !== undefined) p.filterCurrentTgid(cfg.pid);
  else if (cfg.selfPid !== undefined) {
    p.call("get_current_pid_tgid").rsh(r0, 32).returnIf(r0, "==", cfg.selfPid);
  }
}

/** Jumps to `other` unless `file` (a register) is on the traced file system. */
function onTracedFs(p: Probe, file: typeof r8, cfg: FsSlowerConfig, other: Label): void {
  p.field(r1, file, "file", "f_inode->i_sb->s_magic");
  p.mov64(r2, BigInt(cfg.fs.magic)).jumpIf(r1, "!=", r2, other);
}

/** sys_enter_*: remember when the operation started, and on which file at which offset. */
function enterProgram(sc: Syscall, cfg: FsSlowerConfig): Probe {
  const p = tracepoint("syscalls", `sys_enter_${sc.name}`, {
    name: `${PROGRAM_PREFIX}${sc.short}_in`,
  });
  pidFilter(p, cfg);
  const value = p.stack(pending.size), key = p.stack(4), other = p.label();
  p.zeroStack(value, pending.size);
  p.stackPtr(r9, value);
  pending.store(p, r9, "op", sc.op);
  if (sc.op !== FsOp.open) {
    p.ctx(r7, "fd");
    currentFileOfFd(p, r8, r7, other);
    onTracedFs(p, r8, cfg, other);
    pending.store(p, r9, "file", r8);
    if (sc.pos) {
      if (sc.pos.from === "file") p.field(r1, r8, "file", "f_pos");
      else {
        p.ctx(r1, sc.pos.field);
        if (sc.pos.from === "arg_or_file") {
          p.if(r1, "==", -1, () => p.field(r1, r8, "file", "f_pos"));
        }
      }
      pending.store(p, r9, "pos", r1);
    }
  }
  p.ktime(r0);
  pending.store(p, r9, "ts", r0);
  p.call("get_current_pid_tgid").store("u32", r10, key, r0).update(starts, key, value);
  p.bind(other);
  return p.ret(0);
}

/** sys_exit_*: the operation's latency, and one record when it is over the threshold. */
function exitProgram(sc: Syscall, cfg: FsSlowerConfig, ch: EventsDef): Probe {
  const p = tracepoint("syscalls", `sys_exit_${sc.name}`, {
    name: `${PROGRAM_PREFIX}${sc.short}_out`,
  });
  const key = p.stack(4), end = p.stack(8), cleanup = p.label();
  p.call("get_current_pid_tgid").store("u32", r10, key, r0);
  p.lookup(starts, key).returnIf(r0, "==", 0).mov(r8, r0);
  pending.load(p, r1, r8, "op");
  p.jumpIf(r1, "!=", sc.op, cleanup); // a stale entry from another syscall

  if (sc.op === FsOp.open) {
    // The new fd's file: a regular file on the traced file system, really opened (not O_PATH).
    p.ctx(r9, "ret").jumpIf(r9, "s<", 0, cleanup);
    currentFileOfFd(p, r7, r9, cleanup);
    onTracedFs(p, r7, cfg, cleanup);
    p.field(r1, r7, "file", "f_inode->i_mode").and(r1, S_IFMT).jumpIf(r1, "!=", S_IFREG, cleanup);
    p.field(r1, r7, "file", "f_flags").and(r1, O_PATH).jumpIf(r1, "!=", 0, cleanup);
    pending.store(p, r8, "file", r7);
  }

  p.ktime(r0).store("u64", r10, end, r0);
  pending.load(p, r1, r8, "ts");
  p.sub(r0, r1).mov(r9, r0); // r9 = latency in ns
  p.mov64(r1, cfg.minNs).jumpIf(r9, "<=", r1, cleanup);

  reserve(p, ch, r7, cleanup);
  p.load(r1, "u64", r10, end);
  fsEvent.store(p, r7, "endNs", r1);
  p.div(r9, 1000);
  fsEvent.store(p, r7, "deltaUs", r9);
  pending.load(p, r1, r8, "pos");
  fsEvent.store(p, r7, "offset", r1);
  if (sc.op === FsOp.read || sc.op === FsOp.write) p.ctx(r1, "ret");
  else if (sc.op === FsOp.fsync) p.mov64(r1, WHOLE_FILE);
  else p.mov(r1, 0);
  fsEvent.store(p, r7, "size", r1);
  p.call("get_current_pid_tgid").rsh(r0, 32);
  fsEvent.store(p, r7, "pid", r0);
  fsEvent.store(p, r7, "op", sc.op);
  fsEvent.currentComm(p, r7, "task");
  pending.load(p, r9, r8, "file");
  p.field(r9, r9, "file", "f_path.dentry->d_name.name");
  fsEvent.readString(p, r7, "file", r9, "kernel"); // zero-filled when unreadable
  submit(p, ch, r7);

  p.bind(cleanup).delete(starts, key);
  return p.ret(0);
}
