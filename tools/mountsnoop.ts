#!/usr/bin/env -S deno run -A
/**
 * mountsnoop: trace mount() and umount2(), one line per call with its
 * arguments as a C call, its result, and the caller's mount namespace.
 *
 * Events: syscalls:sys_enter/sys_exit_mount and _umount (umount2's
 * tracepoint). The enter side saves the argument pointers, flags and start
 * time per thread; the exit side reads the strings (source, target, file
 * system type, data) and sends one record through a ring buffer (a perf
 * buffer on kernels before 5.8). Output and flags follow libbpf-tools
 * mountsnoop; flags are named by their real bits (libbpf-tools names the
 * bits above MS_NOSYMFOLLOW one off, and umount's MNT_* flags as MS_*).
 *
 *     # deno run -A tools/mountsnoop.ts
 *     COMM             PID     TID     MNT_NS      CALL
 *     mount            17152   17152   4026531832  mount("mytmp", "/tmp/m", "tmpfs", 0x0, "size=1m") = 0
 *     umount           17153   17153   4026531832  umount("/tmp/m", 0x0) = 0
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import { eventTool } from "../lib/cli/drivers/events.ts";
import { flag, option, pidValue } from "../lib/cli/flags.ts";
import { type EventsDef, reserve, submit } from "../lib/dsl/events.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import { type Probe, tracepoint } from "../lib/dsl/program.ts";
import { r0, r1, r10, r3, r7, r8, r9 } from "../lib/dsl/registers.ts";
import { char, defineSchema } from "../lib/dsl/schema.ts";
import { errnoName } from "../lib/format/errno.ts";
import { escapeText } from "../lib/format/escape.ts";
import { formatTimeOfDay } from "../lib/format/time.ts";

const PATH_MAX = 4096;
const DATA_LEN = 512;
const OP_MOUNT = 0, OP_UMOUNT = 1;

/** What the operator asked for. */
interface Options {
  timestamp: boolean;
  detailed: boolean;
  pid?: number;
}

// --- BPF side ---------------------------------------------------------------

/** One call, as sent to user space. */
const mountEvent = defineSchema("mount_event", {
  delta_ns: "u64",
  flags: "u64",
  pid: "u32",
  tid: "u32",
  mnt_ns: "u32",
  ret: "s32",
  op: "u32",
  comm: char(16),
  fs: char(32),
  src: char(PATH_MAX),
  dest: char(PATH_MAX),
  data: char(DATA_LEN),
});

/** The call in flight, by thread: argument pointers, flags, start time. */
const callArgs = defineSchema("mount_args", {
  ts: "u64",
  flags: "u64",
  src: "u64",
  dest: "u64",
  fs: "u64",
  data: "u64",
  op: "u32",
});
const args = defineMap({
  name: "args",
  type: "hash",
  keySize: 4,
  valueSize: callArgs.size,
  maxEntries: 10240,
});

/** sys_enter_mount/umount: save the arguments by TID. */
function enterProgram(syscall: "mount" | "umount", o: Options): Probe {
  const p = tracepoint("syscalls", `sys_enter_${syscall}`, { name: `${syscall}_entry` });
  const key = p.stack(4), saved = p.stack(callArgs.size);
  p.call("get_current_pid_tgid").store("u32", r10, key, r0);
  if (o.pid !== undefined) p.rsh(r0, 32).returnIf(r0, "!=", o.pid);
  p.zeroStack(saved, callArgs.size).stackPtr(r9, saved);
  p.ktime(r0);
  callArgs.store(p, r9, "ts", r0);
  p.ctx(r1, "flags");
  callArgs.store(p, r9, "flags", r1);
  if (syscall === "mount") {
    for (
      const [field, arg] of [["src", "dev_name"], ["dest", "dir_name"], ["fs", "type"], [
        "data",
        "data",
      ]] as const
    ) {
      p.ctx(r1, arg);
      callArgs.store(p, r9, field, r1);
    }
    callArgs.store(p, r9, "op", OP_MOUNT);
  } else {
    p.ctx(r1, "name");
    callArgs.store(p, r9, "dest", r1);
    callArgs.store(p, r9, "op", OP_UMOUNT);
  }
  p.update(args, key, saved);
  return p.ret(0);
}

/** Reads a user string into a record field; an empty string when it cannot be read. */
function readUserString(
  p: Probe,
  rec: typeof r7,
  saved: typeof r8,
  field: "src" | "dest" | "fs" | "data",
): void {
  callArgs.load(p, r3, saved, field);
  mountEvent.readString(p, rec, field, r3);
  p.if(r0, "s<", 1, () => p.store("u8", rec, mountEvent.offset(field), 0));
}

/** sys_exit_*: read the strings, add the result and the caller, send. */
function exitProgram(syscall: "mount" | "umount", ch: EventsDef): Probe {
  const p = tracepoint("syscalls", `sys_exit_${syscall}`, { name: `${syscall}_exit` });
  const key = p.stack(4), cleanup = p.label();
  p.call("get_current_pid_tgid").store("u32", r10, key, r0);
  p.lookup(args, key).returnIf(r0, "==", 0).mov(r8, r0);
  reserve(p, ch, r7, cleanup);
  p.ktime(r0);
  callArgs.load(p, r1, r8, "ts");
  p.sub(r0, r1);
  mountEvent.store(p, r7, "delta_ns", r0);
  callArgs.load(p, r1, r8, "flags");
  mountEvent.store(p, r7, "flags", r1);
  callArgs.load(p, r1, r8, "op");
  mountEvent.store(p, r7, "op", r1);
  p.ctx(r1, "ret");
  mountEvent.store(p, r7, "ret", r1);
  p.call("get_current_pid_tgid");
  mountEvent.store(p, r7, "tid", r0);
  p.rsh(r0, 32);
  mountEvent.store(p, r7, "pid", r0);
  p.call("get_current_task").mov(r1, r0);
  p.field(r1, r1, "task_struct", "nsproxy->mnt_ns->ns.inum");
  mountEvent.store(p, r7, "mnt_ns", r1);
  mountEvent.currentComm(p, r7, "comm");
  for (const field of ["src", "dest", "fs", "data"] as const) readUserString(p, r7, r8, field);
  submit(p, ch, r7);
  p.bind(cleanup).delete(args, key);
  return p.ret(0);
}

function buildPrograms(o: Options, ch: EventsDef) {
  return [
    enterProgram("mount", o),
    exitProgram("mount", ch),
    enterProgram("umount", o),
    exitProgram("umount", ch),
  ].map((p) => p.build());
}

// --- user side --------------------------------------------------------------

/** mount(2) flags by bit (include/uapi/linux/mount.h). */
const MOUNT_FLAGS: [number, string][] = [
  [0, "MS_RDONLY"],
  [1, "MS_NOSUID"],
  [2, "MS_NODEV"],
  [3, "MS_NOEXEC"],
  [4, "MS_SYNCHRONOUS"],
  [5, "MS_REMOUNT"],
  [6, "MS_MANDLOCK"],
  [7, "MS_DIRSYNC"],
  [8, "MS_NOSYMFOLLOW"],
  [10, "MS_NOATIME"],
  [11, "MS_NODIRATIME"],
  [12, "MS_BIND"],
  [13, "MS_MOVE"],
  [14, "MS_REC"],
  [15, "MS_SILENT"],
  [16, "MS_POSIXACL"],
  [17, "MS_UNBINDABLE"],
  [18, "MS_PRIVATE"],
  [19, "MS_SLAVE"],
  [20, "MS_SHARED"],
  [21, "MS_RELATIME"],
  [22, "MS_KERNMOUNT"],
  [23, "MS_I_VERSION"],
  [24, "MS_STRICTATIME"],
  [25, "MS_LAZYTIME"],
  [26, "MS_SUBMOUNT"],
  [27, "MS_NOREMOTELOCK"],
  [28, "MS_NOSEC"],
  [29, "MS_BORN"],
  [30, "MS_ACTIVE"],
  [31, "MS_NOUSER"],
];
/** umount2(2) flags by bit. */
const UMOUNT_FLAGS: [number, string][] = [
  [0, "MNT_FORCE"],
  [1, "MNT_DETACH"],
  [2, "MNT_EXPIRE"],
  [3, "UMOUNT_NOFOLLOW"],
];

/** Flags as names joined with " | " (libbpf-tools' layout); "0x0" for none. */
function flagNames(flags: bigint, table: [number, string][]): string {
  if (flags === 0n) return "0x0";
  const names = table.filter(([bit]) => (flags >> BigInt(bit)) & 1n).map(([, n]) => n);
  const known = table.reduce((m, [bit]) => m | (1n << BigInt(bit)), 0n);
  const rest = flags & ~known;
  if (rest) names.push("0x" + rest.toString(16));
  return names.join(" | ");
}

/** The return value: 0, or -ENAME. */
function result(ret: number): string {
  if (ret >= 0) return String(ret);
  const name = errnoName(-ret);
  return name ? `-${name}` : String(ret);
}

type Decoded = ReturnType<typeof mountEvent.decode>;

/** The call as C: mount("src", "dest", "fs", FLAGS, "data") = ret. */
function call(e: Decoded): string {
  const q = (s: string) => `"${escapeText(s)}"`;
  if (e.op === OP_UMOUNT) {
    return `umount(${q(e.dest)}, ${flagNames(e.flags, UMOUNT_FLAGS)}) = ${result(e.ret)}`;
  }
  return `mount(${q(e.src)}, ${q(e.dest)}, ${q(e.fs)}, ${flagNames(e.flags, MOUNT_FLAGS)}, ` +
    `${q(e.data)}) = ${result(e.ret)}`;
}

function header(o: Options): string {
  if (o.detailed) return "";
  return (o.timestamp ? "TIME".padEnd(8) + " " : "") +
    `${"COMM".padEnd(16)} ${"PID".padEnd(7)} ${"TID".padEnd(7)} ${"MNT_NS".padEnd(11)} CALL\n`;
}

function textLine(data: Uint8Array, o: Options): string {
  const e = mountEvent.decode(data);
  if (o.detailed) {
    const umount = e.op === OP_UMOUNT;
    return [
      `PID:    ${e.pid}`,
      `TID:    ${e.tid}`,
      `COMM:   ${escapeText(e.comm)}`,
      `OP:     ${umount ? "UMOUNT" : "MOUNT"}`,
      `RET:    ${result(e.ret)}`,
      `LAT:    ${e.delta_ns / 1000n}us`,
      `MNT_NS: ${e.mnt_ns}`,
      `FS:     ${escapeText(e.fs)}`,
      `SOURCE: ${escapeText(e.src)}`,
      `TARGET: ${escapeText(e.dest)}`,
      `DATA:   ${escapeText(e.data)}`,
      `FLAGS:  ${flagNames(e.flags, umount ? UMOUNT_FLAGS : MOUNT_FLAGS)}`,
    ].join("\n") + "\n\n";
  }
  return (o.timestamp ? formatTimeOfDay(new Date()).padEnd(8) + " " : "") +
    `${escapeText(e.comm).padEnd(16)} ${String(e.pid).padEnd(7)} ${String(e.tid).padEnd(7)} ` +
    `${String(e.mnt_ns).padEnd(11)} ${call(e)}\n`;
}

function jsonFields(data: Uint8Array) {
  const e = mountEvent.decode(data);
  const umount = e.op === OP_UMOUNT;
  return {
    comm: e.comm,
    pid: e.pid,
    tid: e.tid,
    mntNs: e.mnt_ns,
    op: umount ? "umount" : "mount",
    ...(umount ? {} : { source: e.src, fs: e.fs, data: e.data }),
    target: e.dest,
    flags: Number(e.flags),
    ret: e.ret,
    latencyUs: Number(e.delta_ns) / 1000,
  };
}

export const tool = eventTool({
  name: "mountsnoop",
  summary: "Trace mount and umount syscalls.",
  examples: [
    ["mountsnoop", "trace mount and umount syscalls"],
    ["mountsnoop -d", "detailed output (one line per column value)"],
    ["mountsnoop -p 1216", "only trace PID 1216"],
  ],
  flags: {
    detailed: flag("output result in detail mode", "d"),
    pid: option("PID", "process ID to trace", pidValue, { short: "p" }),
    timestamp: flag("include timestamp on output", "t"),
  },
  variants: [["-p", "1"]],
}, {
  recordSize: mountEvent.size,
  ringBytes: 1 << 20,
  build: buildPrograms,
  header,
  text: textLine,
  json: jsonFields,
});

if (import.meta.main) await tool.main();
