#!/usr/bin/env -S deno run -A
/**
 * filelife: trace the lifespan of short-lived files: one line when a file
 * is deleted that was created while tracing, with its age.
 *
 * Events: syscalls:sys_enter/exit of open, openat, openat2 and creat (an
 * open that created its file: O_CREAT, and FMODE_CREATED on the file the new
 * descriptor refers to, found through the task's file table) and of unlink
 * and unlinkat (a successful removal). libbpf-tools filelife needs kprobes
 * on vfs_create and vfs_unlink; here a file is known by the name it was
 * created and removed under, resolved as the kernel starts to: an absolute
 * path, or a relative one from the same directory (the working directory's
 * or the dirfd's dentry). A file renamed before it is removed, or removed
 * under another spelling of its name, is not seen. Output and flags follow
 * libbpf-tools filelife (FILE is the last component of the name).
 *
 *     # deno run -A tools/filelife.ts
 *     Tracing the lifespan of short-lived files ... Hit Ctrl-C to end.
 *     TIME     PID    COMM             AGE(s)  FILE
 *     10:31:12 4183   gcc              0.01    ccCB2iS1.s
 *     10:31:12 4183   gcc              0.02    ccR4pWhD.o
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import { eventTool } from "../lib/cli/drivers/events.ts";
import { option, pidValue } from "../lib/cli/flags.ts";
import { syscallTracepointExists } from "../lib/cli/syscalls.ts";
import { type EventsDef, reserve, submit } from "../lib/dsl/events.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import { type Probe, tracepoint } from "../lib/dsl/program.ts";
import { r0, r1, r10, r2, r3, r4, r7, r8, r9 } from "../lib/dsl/registers.ts";
import { char, defineSchema } from "../lib/dsl/schema.ts";
import { currentFileOfFd } from "../lib/dsl/task_file.ts";
import { escapeText } from "../lib/format/escape.ts";
import { formatFixed, formatTimeOfDay } from "../lib/format/time.ts";

const PATH_LEN = 256;
const O_CREAT = 0o100;
/** FMODE_CREATED (include/linux/fs.h): this open created the file. */
const FMODE_CREATED = 1 << 20;
const AT_FDCWD = -100;
const AT_REMOVEDIR = 0x200;
const SLASH = 0x2f;

/** What the operator asked for. */
interface Options {
  pid?: number;
}

// --- BPF side ---------------------------------------------------------------

/** A file's key: the directory its name starts from (0: absolute), then the name. */
const fileKey = defineSchema("file_key", { dir: "u64", path: char(PATH_LEN) });
/** A create or unlink in flight, by TID: its dirfd and the user pointer to the name. */
const pending = defineSchema("pending", { dfd: "u64", path: "u64" });
/** One short-lived file, as sent to user space. */
const lifeEvent = defineSchema("life_event", {
  age_ns: "u64",
  pid: "u32",
  comm: char(16),
  path: char(PATH_LEN),
});

const inFlight = defineMap({
  name: "pending",
  type: "hash",
  keySize: 4,
  valueSize: pending.size,
  maxEntries: 10240,
});
/** When each file we saw created was created, by key. */
const births = defineMap({
  name: "births",
  type: "hash",
  keySize: fileKey.size,
  valueSize: 8,
  maxEntries: 8192,
});
/** Where keys are built (too large for the stack with the rest). */
const keyScratch = defineMap({
  name: "key_scratch",
  type: "percpu_array",
  keySize: 4,
  valueSize: fileKey.size,
  maxEntries: 1,
});

type SyscallName = "open" | "openat" | "openat2" | "creat" | "unlink" | "unlinkat";

/** sys_enter: remember the dirfd and the name pointer of a create (or an unlink). */
function enterProgram(syscall: SyscallName, o: Options): Probe {
  const p = tracepoint("syscalls", `sys_enter_${syscall}`, { name: `filelife_${short(syscall)}` });
  const value = p.stack(pending.size), tid = p.stack(4), out = p.label();
  p.call("get_current_pid_tgid").mov(r7, r0);
  if (o.pid !== undefined) p.mov(r1, r7).rsh(r1, 32).jumpIf(r1, "!=", o.pid, out);
  if (syscall === "open" || syscall === "openat") {
    p.ctx(r1, "flags").and(r1, O_CREAT).jumpIf(r1, "==", 0, out);
  }
  if (syscall === "openat2") {
    const flags = p.stack(8);
    p.store("u64", r10, flags, 0).ctx(r3, "how").stackPtr(r1, flags).mov(r2, 8)
      .call("probe_read_user");
    p.load(r1, "u64", r10, flags).and(r1, O_CREAT).jumpIf(r1, "==", 0, out);
  }
  if (syscall === "unlinkat") p.ctx(r1, "flag").jumpIf(r1, "&", AT_REMOVEDIR, out);
  const hasDfd = syscall === "openat" || syscall === "openat2" || syscall === "unlinkat";
  if (hasDfd) p.ctx(r1, "dfd");
  else p.mov(r1, AT_FDCWD);
  p.store("u64", r10, value + pending.offset("dfd"), r1);
  p.ctx(r1, syscall === "creat" || syscall.startsWith("unlink") ? "pathname" : "filename");
  p.store("u64", r10, value + pending.offset("path"), r1);
  p.store("u32", r10, tid, r7).update(inFlight, tid, value);
  p.bind(out);
  return p.ret(0);
}

/** r7 = the scratch key for the pending name at r8 (dir, then the name), or a jump to `fail`. */
function buildKey(p: Probe, fail: ReturnType<Probe["label"]>): void {
  const scratchKey = p.stack(4), dirSet = p.label();
  const scratch = () =>
    p.store("u32", r10, scratchKey, 0).lookup(keyScratch, scratchKey).jumpIf(r0, "==", 0, fail)
      .mov(r7, r0);
  scratch();
  for (let i = 0; i < fileKey.size; i += 8) p.store("u64", r7, i, 0);
  pending.load(p, r3, r8, "path");
  fileKey.fieldPtr(p, r1, r7, "path");
  p.mov(r2, PATH_LEN).call("probe_read_user_str").jumpIf(r0, "s<=", 0, fail);
  // An absolute name needs no directory.
  p.load(r1, "u8", r7, fileKey.offset("path")).jumpIf(r1, "==", SLASH, dirSet);
  pending.load(p, r9, r8, "dfd");
  p.mov32(r9, r9).mov32(r2, AT_FDCWD);
  p.if(r9, "==", r2, () => {
    p.call("get_current_task").field(r1, r0, "task_struct", "fs->pwd.dentry");
    fileKey.store(p, r7, "dir", r1);
  }, () => {
    currentFileOfFd(p, r7, r9, fail);
    p.field(r9, r7, "file", "f_path.dentry");
    scratch();
    fileKey.store(p, r7, "dir", r9);
  });
  p.bind(dirSet);
}

/** sys_exit of a create: a new file's birth, under its key. */
function createExitProgram(syscall: SyscallName): Probe {
  const p = tracepoint("syscalls", `sys_exit_${syscall}`, {
    name: `filelife_${short(syscall)}x`,
    allowPointerLeaks: true, // dentry pointers as hash keys, never shown
  });
  const tid = p.stack(4), ts = p.stack(8), cleanup = p.label(), out = p.label();
  p.call("get_current_pid_tgid").store("u32", r10, tid, r0);
  p.lookup(inFlight, tid).jumpIf(r0, "==", 0, out).mov(r8, r0);
  p.ctx(r9, "ret").jumpIf(r9, "s<", 0, cleanup);
  currentFileOfFd(p, r7, r9, cleanup);
  p.field(r1, r7, "file", "f_mode").and(r1, FMODE_CREATED).jumpIf(r1, "==", 0, cleanup);
  buildKey(p, cleanup);
  p.ktime(r0).store("u64", r10, ts, r0);
  p.loadMap(r1, births).mov(r2, r7).stackPtr(r3, ts).mov(r4, 0).call("map_update_elem");
  p.bind(cleanup).delete(inFlight, tid);
  p.bind(out);
  return p.ret(0);
}

/** sys_exit of an unlink: if we saw the file born, its life. */
function unlinkExitProgram(syscall: SyscallName, ch: EventsDef): Probe {
  const p = tracepoint("syscalls", `sys_exit_${syscall}`, {
    name: `filelife_${short(syscall)}x`,
    allowPointerLeaks: true,
  });
  const tid = p.stack(4), age = p.stack(8), cleanup = p.label(), out = p.label();
  p.call("get_current_pid_tgid").store("u32", r10, tid, r0);
  p.lookup(inFlight, tid).jumpIf(r0, "==", 0, out).mov(r8, r0);
  p.ctx(r1, "ret").jumpIf(r1, "!=", 0, cleanup);
  buildKey(p, cleanup);
  p.loadMap(r1, births).mov(r2, r7).call("map_lookup_elem").jumpIf(r0, "==", 0, cleanup);
  p.load(r9, "u64", r0, 0).ktime(r0).sub(r0, r9).store("u64", r10, age, r0);
  reserve(p, ch, r8, cleanup); // r8: the pending entry is no longer needed
  p.load(r1, "u64", r10, age);
  lifeEvent.store(p, r8, "age_ns", r1);
  p.call("get_current_pid_tgid").rsh(r0, 32);
  lifeEvent.store(p, r8, "pid", r0);
  lifeEvent.currentComm(p, r8, "comm");
  const from = fileKey.offset("path"), to = lifeEvent.offset("path");
  for (let i = 0; i < PATH_LEN; i += 8) {
    p.load(r1, "u64", r7, from + i).store("u64", r8, to + i, r1);
  }
  submit(p, ch, r8);
  p.loadMap(r1, births).mov(r2, r7).call("map_delete_elem");
  p.bind(cleanup).delete(inFlight, tid);
  p.bind(out);
  return p.ret(0);
}

function short(syscall: SyscallName): string {
  return ({
    open: "op",
    openat: "opat",
    openat2: "opat2",
    creat: "creat",
    unlink: "unl",
    unlinkat: "unlat",
  })[syscall];
}

function buildPrograms(o: Options, ch: EventsDef) {
  const programs: Probe[] = [];
  for (const syscall of ["open", "openat", "openat2", "creat"] as const) {
    if (!syscallTracepointExists(`sys_enter_${syscall}`)) continue; // no open(2) or creat(2) on arm64
    programs.push(enterProgram(syscall, o), createExitProgram(syscall));
  }
  for (const syscall of ["unlink", "unlinkat"] as const) {
    if (!syscallTracepointExists(`sys_enter_${syscall}`)) continue;
    programs.push(enterProgram(syscall, o), unlinkExitProgram(syscall, ch));
  }
  return programs.map((p) => p.build());
}

// --- user side --------------------------------------------------------------

function header(): string {
  return "Tracing the lifespan of short-lived files ... Hit Ctrl-C to end.\n" +
    `${"TIME".padEnd(8)} ${"PID".padEnd(6)} ${"COMM".padEnd(16)} ${"AGE(s)".padEnd(7)} FILE\n`;
}

function textLine(data: Uint8Array): string {
  const e = lifeEvent.decode(data);
  const name = e.path.slice(e.path.lastIndexOf("/") + 1);
  return `${formatTimeOfDay(new Date())} ${String(e.pid).padEnd(6)} ` +
    `${escapeText(e.comm).padEnd(16)} ${formatFixed(Number(e.age_ns) / 1e9, 2).padEnd(7)} ` +
    `${escapeText(name)}\n`;
}

function jsonFields(data: Uint8Array) {
  const e = lifeEvent.decode(data);
  return { pid: e.pid, comm: e.comm, ageSeconds: Number(e.age_ns) / 1e9, path: e.path };
}

export const tool = eventTool({
  name: "filelife",
  summary: "Trace the lifespan of short-lived files.",
  examples: [
    ["filelife", "trace all events"],
    ["filelife -p 123", "trace pid 123"],
  ],
  flags: {
    pid: option("PID", "process PID to trace", pidValue, { short: "p" }),
  },
  variants: [["-p", "1"]],
  options: (v): Options => v,
}, {
  recordSize: lifeEvent.size,
  build: buildPrograms,
  header,
  text: textLine,
  json: jsonFields,
});

if (import.meta.main) await tool.main();
