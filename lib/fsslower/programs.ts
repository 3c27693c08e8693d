/**
 * The BPF side of the fsslower tools, built from syscall tracepoints: this
 * path needs neither kprobes nor fentry (libbpf-tools fsslower needs one of
 * them, on the file system's read_iter/write_iter/open/fsync functions).
 * Two programs, on raw_syscalls:sys_enter and sys_exit (lib/dsl/raw_syscalls.ts
 * says why not one tracepoint per syscall):
 *
 * - enter of read, write, pread64, pwrite64, readv, writev, preadv, pwritev,
 *   preadv2, pwritev2, fsync, fdatasync: look the fd up in the task's file
 *   table, keep going only when the file's superblock has the traced file
 *   system's magic, and save (time, file, position) per thread;
 *   enter of open, openat, openat2, creat, open_by_handle_at: save the time
 *   (the file does not exist yet).
 * - exit of the same syscall: the latency; for opens, the new fd's file (a
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
import type { BuiltProgram, Label } from "../dsl/builder.ts";
import { type EventsDef, reserve, submit } from "../dsl/events.ts";
import type { HistMapDef } from "../dsl/hist.ts";
import { defineMap } from "../dsl/maps.ts";
import type { Probe } from "../dsl/program.ts";
import {
  jumpToSyscalls,
  rawSyscallProbe,
  skipCompatSyscall,
  syscallArg,
} from "../dsl/raw_syscalls.ts";
import { r0, r1, r10, r2, r7, r8, r9 } from "../dsl/registers.ts";
import { char, defineSchema } from "../dsl/schema.ts";
import { currentFileOfFd } from "../dsl/task_file.ts";
import type { FileSystem } from "./filesystems.ts";

/** The operations, as libbpf-tools numbers them (enum fs_file_op). */
export const FsOp = { read: 0, write: 1, open: 2, fsync: 3 } as const;
/** One of {@link FsOp}. */
export type FsOpCode = (typeof FsOp)[keyof typeof FsOp];

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
const pending = defineSchema("fs_pending", {
  ts: "u64",
  file: "u64",
  pos: "s64",
  op: "u32",
  /** The syscall's number: the exit must be of the same syscall. */
  nr: "u32",
});

const starts = defineMap({
  name: "fss_starts",
  type: "hash",
  keySize: 4,
  valueSize: pending.size,
  maxEntries: 8192,
});

/** Where an operation's file offset comes from. */
const Pos = {
  /** no offset: opens, fsyncs */
  none: 0,
  /** the file's f_pos (read, write, readv, writev) */
  file: 1,
  /** the 4th argument (pread64's pos, preadv's pos_l) */
  arg: 2,
  /** preadv2/pwritev2: the 4th argument, or f_pos when it is -1 */
  argOrFile: 3,
} as const;

/** The traced syscalls, by what they do and where their offset comes from. */
const SYSCALL_GROUPS: [names: string[], op: FsOpCode, pos: number][] = [
  [["read", "readv"], FsOp.read, Pos.file],
  [["write", "writev"], FsOp.write, Pos.file],
  [["pread64", "preadv"], FsOp.read, Pos.arg],
  [["pwrite64", "pwritev"], FsOp.write, Pos.arg],
  [["preadv2"], FsOp.read, Pos.argOrFile],
  [["pwritev2"], FsOp.write, Pos.argOrFile],
  [["fsync", "fdatasync"], FsOp.fsync, Pos.none],
  [["open", "openat", "openat2", "creat", "open_by_handle_at"], FsOp.open, Pos.none],
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

/** The two programs. */
export function buildFsSlowerPrograms(cfg: FsSlowerConfig, ch: EventsDef): BuiltProgram[] {
  return [enterProgram(cfg).build(), exitProgram(cfg, (p, r) => emitRecord(p, ch, r)).build()];
}

/**
 * The same two programs, but each operation is counted in `hist` (keyed by
 * the u32 op, slot log2 of the latency in microseconds, or milliseconds with
 * `ms`) instead of sent: fsdist (xfsdist, ext4dist, btrfsdist).
 */
export function buildFsDistPrograms(
  cfg: FsSlowerConfig,
  hist: HistMapDef,
  ms: boolean,
): BuiltProgram[] {
  const emit = (p: Probe, r: ExitRegs) => {
    const key = p.stack(4), zero = p.stack(hist.valueSize);
    p.mov(r1, r.latencyNs).div(r1, ms ? 1_000_000 : 1000).mov(r7, r1);
    p.log2(r9, r7, r1).clamp(r9, hist.slots - 1);
    pending.load(p, r1, r.pending, "op");
    p.store("u32", r10, key, r1);
    p.histAdd(hist, key, r9, { zeroOff: zero });
  };
  return [enterProgram(cfg).build(), exitProgram(cfg, emit).build()];
}

/** What the exit program hands its emitter: the pending entry, the latency in ns, the end time. */
interface ExitRegs {
  /** The pending entry (op, pos, file): r8. */
  pending: typeof r8;
  /** The latency in nanoseconds: r9. */
  latencyNs: typeof r9;
  /** Where the end time (ns) is on the stack. */
  endAt: number;
  /** Where to go when nothing is to be emitted. */
  cleanup: Label;
}

/** Jumps to `other` unless the current process is the one asked for (never the tracer). */
function pidFilter(p: Probe, cfg: FsSlowerConfig, other: Label): void {
  if (cfg.pid === undefined && cfg.selfPid === undefined) return;
  p.call("get_current_pid_tgid").rsh(r0, 32);
  if (cfg.pid !== undefined) p.jumpIf(r0, "!=", cfg.pid, other);
  else p.jumpIf(r0, "==", cfg.selfPid!, other);
}

/** Jumps to `other` unless `file` (a register) is on the traced file system. */
function onTracedFs(p: Probe, file: typeof r8, cfg: FsSlowerConfig, other: Label): void {
  p.field(r1, file, "file", "f_inode->i_sb->s_magic");
  p.mov64(r2, BigInt(cfg.fs.magic)).jumpIf(r1, "!=", r2, other);
}

/** sys_enter: remember when the operation started, and on which file at which offset. */
function enterProgram(cfg: FsSlowerConfig): Probe {
  const p = rawSyscallProbe("enter", `${PROGRAM_PREFIX}enter`);
  const value = p.stack(pending.size), key = p.stack(4), posFrom = p.stack(8);
  const common = p.label(), save = p.label(), other = p.label();
  const cases = SYSCALL_GROUPS.map(([names, op, pos]) => ({ names, op, pos, label: p.label() }));

  p.ctx(r7, "id");
  jumpToSyscalls(p, r7, cases.map((c) => [c.names, c.label]), other);
  for (const c of cases) p.bind(c.label).mov(r8, c.op).mov(r9, c.pos).goto(common);

  p.bind(common);
  p.zeroStack(value, pending.size);
  p.store("u32", r10, value + pending.offset("nr"), r7);
  p.store("u32", r10, value + pending.offset("op"), r8);
  p.store("u64", r10, posFrom, r9);
  pidFilter(p, cfg, other);
  skipCompatSyscall(p, other);
  p.jumpIf(r8, "==", FsOp.open, save);

  syscallArg(p, r7, 0); // the fd
  currentFileOfFd(p, r8, r7, other);
  onTracedFs(p, r8, cfg, other);
  p.stackPtr(r9, value);
  pending.store(p, r9, "file", r8);
  p.load(r7, "u64", r10, posFrom);
  p.mov(r1, 0);
  p.if(r7, "==", Pos.file, () => p.field(r1, r8, "file", "f_pos"));
  p.if(r7, ">=", Pos.arg, () => syscallArg(p, r1, 3));
  p.if(r7, "==", Pos.argOrFile, () => {
    p.if(r1, "==", -1, () => p.field(r1, r8, "file", "f_pos"));
  });
  pending.store(p, r9, "pos", r1);

  p.bind(save);
  p.ktime(r0).store("u64", r10, value + pending.offset("ts"), r0);
  p.call("get_current_pid_tgid").store("u32", r10, key, r0).update(starts, key, value);
  p.bind(other);
  return p.ret(0);
}

/** sys_exit: the operation's latency, handed to `emit` when it is over the threshold. */
function exitProgram(cfg: FsSlowerConfig, emit: (p: Probe, r: ExitRegs) => void): Probe {
  const p = rawSyscallProbe("exit", `${PROGRAM_PREFIX}exit`);
  const key = p.stack(4), end = p.stack(8);
  const ours = p.label(), other = p.label(), cleanup = p.label();
  p.ctx(r7, "id");
  jumpToSyscalls(p, r7, [[SYSCALL_GROUPS.flatMap(([names]) => names), ours]], other);
  p.bind(ours);
  p.call("get_current_pid_tgid").store("u32", r10, key, r0);
  p.lookup(starts, key).jumpIf(r0, "==", 0, other).mov(r8, r0);
  pending.load(p, r1, r8, "nr");
  p.jumpIf(r1, "!=", r7, cleanup); // a stale entry from another syscall

  pending.load(p, r1, r8, "op");
  p.if(r1, "==", FsOp.open, () => {
    // The new fd's file: a regular file on the traced file system, really opened (not O_PATH).
    p.ctx(r9, "ret").jumpIf(r9, "s<", 0, cleanup);
    currentFileOfFd(p, r7, r9, cleanup);
    onTracedFs(p, r7, cfg, cleanup);
    p.field(r1, r7, "file", "f_inode->i_mode").and(r1, S_IFMT).jumpIf(r1, "!=", S_IFREG, cleanup);
    p.field(r1, r7, "file", "f_flags").and(r1, O_PATH).jumpIf(r1, "!=", 0, cleanup);
    pending.store(p, r8, "file", r7);
  });

  p.ktime(r0).store("u64", r10, end, r0);
  pending.load(p, r1, r8, "ts");
  p.sub(r0, r1).mov(r9, r0); // r9 = latency in ns
  p.mov64(r1, cfg.minNs).jumpIf(r9, "<=", r1, cleanup);
  emit(p, { pending: r8, latencyNs: r9, endAt: end, cleanup });
  p.bind(cleanup).delete(starts, key);
  p.bind(other);
  return p.ret(0);
}

/** fsslower's record: one slow operation through the event channel. */
function emitRecord(p: Probe, ch: EventsDef, r: ExitRegs): void {
  const { endAt: end, cleanup } = r;
  reserve(p, ch, r7, cleanup);
  p.load(r1, "u64", r10, end);
  fsEvent.store(p, r7, "endNs", r1);
  p.div(r9, 1000);
  fsEvent.store(p, r7, "deltaUs", r9);
  pending.load(p, r1, r8, "pos");
  fsEvent.store(p, r7, "offset", r1);
  pending.load(p, r9, r8, "op");
  fsEvent.store(p, r7, "op", r9);
  // size: the return value (bytes transferred; an fsync's 0, as bcc shows it), 0 for opens
  p.mov(r1, 0);
  p.if(r9, "!=", FsOp.open, () => p.ctx(r1, "ret"));
  fsEvent.store(p, r7, "size", r1);
  p.call("get_current_pid_tgid").rsh(r0, 32);
  fsEvent.store(p, r7, "pid", r0);
  fsEvent.currentComm(p, r7, "task");
  pending.load(p, r9, r8, "file");
  p.field(r9, r9, "file", "f_path.dentry->d_name.name");
  fsEvent.readString(p, r7, "file", r9, "kernel"); // zero-filled when unreadable
  submit(p, ch, r7);
}
