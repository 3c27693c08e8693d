#!/usr/bin/env -S deno run -A
/**
 * execsnoop: trace new processes, one line per exec() with its full argument
 * list, parent PID and return value.
 *
 * Events: syscalls:sys_enter_execve / sys_exit_execve and the execveat pair.
 * The enter side saves the arguments (read from user memory, up to
 * --max-args) in a per-process hash entry; the exit side adds the return
 * value and the new comm and sends the record through a ring buffer (a perf
 * buffer on kernels before 5.8). Dropped events are counted and reported.
 * Output and flags follow libbpf-tools execsnoop (-P from bcc).
 *
 *     # deno run -A tools/execsnoop.ts
 *     PCOMM            PID    PPID   RET ARGS
 *     ls               14926  14881    0 /usr/bin/ls --color=auto -l
 *     git              14927  14881    0 /usr/bin/git status
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import { eventTool } from "../lib/cli/drivers/events.ts";
import {
  cgroupPath,
  cgroupV2Root,
  flag,
  integer,
  nonEmpty,
  option,
  optionWithDefault,
} from "../lib/cli/flags.ts";
import { UsageError } from "../lib/cli/usage.ts";
import { cgroupMap, skipUnlessInCgroup } from "../lib/dsl/cgroup.ts";
import { countLost, type EventsDef, output } from "../lib/dsl/events.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import { type Probe, tracepoint } from "../lib/dsl/program.ts";
import { r0, r1, r10, r2, r3, r4, r7, r8, r9 } from "../lib/dsl/registers.ts";
import { bytes, char, defineSchema } from "../lib/dsl/schema.ts";
import { decodeBytes, escapeText } from "../lib/format/escape.ts";
import { formatSecondsColumn, formatTimeOfDay } from "../lib/format/time.ts";
import { setCgroup } from "../lib/kernel/map.ts";

/** Bytes read per argument, and the most arguments a record holds (as libbpf-tools). */
const ARG_SIZE = 128;
const TOTAL_MAX_ARGS = 60;
const DEFAULT_MAX_ARGS = 20;
const ARGS_BYTES = ARG_SIZE * TOTAL_MAX_ARGS;
const BPF_F_NO_PREALLOC = 1;

/** What the operator asked for. */
interface Options {
  fails: boolean;
  uid?: number;
  ppid?: number;
  /** -c: a cgroup v2 directory; only execs by its tasks. */
  cgroup?: string;
  maxArgs: number;
  name?: string;
  line?: string;
  quote: boolean;
  time: boolean;
  timestamp: boolean;
  printUid: boolean;
}

/** A UID, or a user name looked up in /etc/passwd. */
function uidArg(value: string): number {
  if (/^-\d+$/.test(value)) throw new UsageError(`invalid UID '${value}': negative`);
  if (/^\d+$/.test(value)) {
    if (Number(value) >= 0xffffffff) throw new UsageError(`invalid UID '${value}': too large`);
    return Number(value);
  }
  let passwd = "";
  try {
    passwd = Deno.readTextFileSync("/etc/passwd");
  } catch { /* no passwd file: only numbers work */ }
  const entry = passwd.split("\n").map((l) => l.split(":")).find((f) => f[0] === value);
  if (!entry || !/^\d+$/.test(entry[2] ?? "")) {
    throw new UsageError(`invalid UID or user '${value}': no such user`);
  }
  return Number(entry[2]);
}

// --- BPF side ---------------------------------------------------------------

/** One exec, as sent to user space: the header, then args_size bytes of NUL-separated args. */
const execEvent = defineSchema("exec_event", {
  pid: "u32",
  ppid: "u32",
  uid: "u32",
  retval: "s32",
  /** Arguments read; max_args + 1 means "there were more". */
  args_count: "u32",
  args_size: "u32",
  comm: char(16),
  args: bytes(ARGS_BYTES),
});
const HEADER_SIZE = execEvent.offset("args");

/** The exec in flight, by process (after a successful exec the caller's TID is the PID). */
const execs = defineMap({
  name: "execs",
  type: "hash",
  keySize: 4,
  valueSize: execEvent.size,
  maxEntries: 10240,
  flags: BPF_F_NO_PREALLOC, // ~7.7 KB values: allocate on use, not 10240 of them up front
});
/** A record-sized array value to create hash entries from (the stack is too small). */
const blank = defineMap({
  name: "blank",
  type: "array",
  keySize: 4,
  valueSize: execEvent.size,
  maxEntries: 1,
});

/** sys_enter_execve(at): save pid, ppid, uid and the arguments. */
function enterProgram(event: string, name: string, o: Options, ch: EventsDef): Probe {
  const p = tracepoint("syscalls", event, { name });
  const key = p.stack(4), zero = p.stack(4), argp = p.stack(8), done = p.label();
  if (o.cgroup !== undefined) skipUnlessInCgroup(p, done);
  if (o.uid !== undefined) {
    p.call("get_current_uid_gid").mov32(r0, r0).returnIf(r0, "!=", o.uid);
  }
  p.call("get_current_task").field(r9, r0, "task_struct", "real_parent->tgid");
  if (o.ppid !== undefined) p.returnIf(r9, "!=", o.ppid);
  p.call("get_current_pid_tgid").rsh(r0, 32).mov(r8, r0).store("u32", r10, key, r8);

  // A fresh entry for this process (copied from the blank record).
  p.store("u32", r10, zero, 0).lookup(blank, zero).returnIf(r0, "==", 0);
  p.loadMap(r1, execs).stackPtr(r2, key).mov(r3, r0).mov(r4, 0).call("map_update_elem");
  p.if(r0, "!=", 0, () => {
    countLost(p, ch); // the hash is full: this exec will not be shown
    p.ret(0);
  });
  p.lookup(execs, key).returnIf(r0, "==", 0).mov(r7, r0);
  execEvent.store(p, r7, "pid", r8);
  execEvent.store(p, r7, "ppid", r9);
  p.call("get_current_uid_gid");
  execEvent.store(p, r7, "uid", r0);
  execEvent.store(p, r7, "retval", 0);

  // args[0]: the file name being executed (as libbpf-tools shows it).
  p.ctx(r9, "filename");
  execEvent.readString(p, r7, "args", r9);
  p.if(r0, ">", ARG_SIZE, () => {
    p.store("u8", r7, HEADER_SIZE, 0).mov(r0, 1); // unreadable: an empty string
  });
  p.mov(r8, r0); // r8: bytes of args so far
  execEvent.store(p, r7, "args_count", 1);
  execEvent.store(p, r7, "args_size", r8);

  // argv[1..max_args-1], unrolled; each stops at the first NULL or fault.
  p.ctx(r9, "argv");
  for (let i = 1; i < o.maxArgs; i++) {
    readArgPointer(p, r9, i, argp, done);
    p.jumpIf(r8, ">", ARGS_BYTES - ARG_SIZE, done); // bounds r8 for the verifier
    p.mov(r1, r7).add(r1, HEADER_SIZE).add(r1, r8).mov(r2, ARG_SIZE).load(r3, "u64", r10, argp);
    p.call("probe_read_user_str");
    p.jumpIf(r0, ">", ARG_SIZE, done).jumpIf(r0, "==", 0, done);
    p.add(r8, r0);
    execEvent.store(p, r7, "args_count", i + 1);
    execEvent.store(p, r7, "args_size", r8);
  }
  // One more pointer tells whether the list was cut.
  readArgPointer(p, r9, o.maxArgs, argp, done);
  execEvent.store(p, r7, "args_count", o.maxArgs + 1);
  p.bind(done);
  return p.ret(0);
}

/** *argp = argv[i] (a user pointer); goes to `done` when it cannot be read or is NULL. */
function readArgPointer(
  p: Probe,
  argv: typeof r9,
  i: number,
  argp: number,
  done: ReturnType<Probe["label"]>,
) {
  p.stackPtr(r1, argp).mov(r2, 8).mov(r3, argv).add(r3, 8 * i).call("probe_read_user");
  p.jumpIf(r0, "!=", 0, done).load(r1, "u64", r10, argp).jumpIf(r1, "==", 0, done);
}

/** sys_exit_execve(at): add the return value and comm, send the record. */
function exitProgram(event: string, name: string, o: Options, ch: EventsDef): Probe {
  const p = tracepoint("syscalls", event, { name });
  const key = p.stack(4), cleanup = p.label();
  p.call("get_current_pid_tgid").rsh(r0, 32).store("u32", r10, key, r0);
  p.lookup(execs, key).returnIf(r0, "==", 0).mov(r7, r0);
  p.ctx(r8, "ret");
  if (!o.fails) p.jumpIf(r8, "s<", 0, cleanup);
  execEvent.store(p, r7, "retval", r8);
  execEvent.currentComm(p, r7, "comm");
  execEvent.load(p, r9, r7, "args_size");
  p.clamp(r9, ARGS_BYTES).add(r9, HEADER_SIZE);
  output(p, ch, r7, r9); // only the header and the bytes of args used
  p.bind(cleanup).delete(execs, key);
  return p.ret(0);
}

function buildPrograms(o: Options, ch: EventsDef) {
  const programs = [
    enterProgram("sys_enter_execve", "execsnoop_enter", o, ch),
    exitProgram("sys_exit_execve", "execsnoop_exit", o, ch),
  ];
  if (hasTracepoint("sys_enter_execveat")) {
    programs.push(
      enterProgram("sys_enter_execveat", "execsnoop_atin", o, ch),
      exitProgram("sys_exit_execveat", "execsnoop_atout", o, ch),
    );
  }
  return programs.map((p) => p.build());
}

function hasTracepoint(name: string): boolean {
  try {
    tracepoint("syscalls", name);
    return true;
  } catch {
    return false;
  }
}

// --- user side --------------------------------------------------------------

/** One exec as the user side sees it. */
interface Exec {
  comm: string;
  pid: number;
  ppid: number;
  uid: number;
  ret: number;
  /** Exact bytes as strings (invalid UTF-8 kept as U+DC80.., see lib/format/escape.ts). */
  args: string[];
  truncated: boolean;
}

/** An argument's bytes as a string: plain ASCII directly, anything else through decodeBytes. */
function argText(a: Uint8Array): string {
  for (let i = 0; i < a.length; i++) if (a[i] >= 0x80) return decodeBytes(a);
  return String.fromCharCode.apply(null, a as unknown as number[]);
}

function decodeExec(data: Uint8Array, o: Options): Exec {
  const e = execEvent.decode(data);
  const size = Math.min(e.args_size, e.args.length);
  const args: string[] = [];
  let start = 0;
  for (let i = 0; i < size && args.length < e.args_count; i++) {
    if (e.args[i] === 0) {
      args.push(argText(e.args.subarray(start, i)));
      start = i + 1;
    }
  }
  return {
    comm: e.comm,
    pid: e.pid,
    ppid: e.ppid,
    uid: e.uid,
    ret: e.retval,
    args,
    truncated: e.args_count === o.maxArgs + 1,
  };
}

// The common case, printed without building an Exec: comm and arguments all
// printable ASCII with nothing escapeText would rewrite, so the record's bytes
// are the text. Output is the same as the general path's, byte for byte.

const PID_AT = execEvent.offset("pid");
const PPID_AT = execEvent.offset("ppid");
const UID_AT = execEvent.offset("uid");
const RETVAL_AT = execEvent.offset("retval");
const ARGS_COUNT_AT = execEvent.offset("args_count");
const ARGS_SIZE_AT = execEvent.offset("args_size");
const COMM_AT = execEvent.offset("comm");
const COMM_SIZE = 16;
const DOUBLE_QUOTE = 0x22;

let lastBuffer: ArrayBufferLike | undefined;
let lastView: DataView | undefined;

/** A DataView on the record's whole buffer (kept while records come from the same mapping). */
function viewOf(data: Uint8Array): DataView {
  if (data.buffer !== lastBuffer) {
    lastBuffer = data.buffer;
    lastView = new DataView(data.buffer);
  }
  return lastView!;
}

/** Whether `b` prints as itself: printable ASCII other than `"` when quoting. */
function isPlain(b: number, quote: boolean): boolean {
  return b >= 0x20 && b <= 0x7e && !(quote && b === DOUBLE_QUOTE);
}

/** bytes[from, to) as a string; the caller checked they are ASCII. */
function asciiText(data: Uint8Array, from: number, to: number): string {
  return String.fromCharCode.apply(null, data.subarray(from, to) as unknown as number[]);
}

/**
 * The output line for a record whose comm and arguments are plain (see isPlain), or
 * undefined when the general path must print it. Applies the -n filter.
 */
function plainLine(data: Uint8Array, o: Options, start: number): string | undefined {
  if (data.length < HEADER_SIZE) return undefined;
  let commEnd = COMM_AT;
  for (; commEnd < COMM_AT + COMM_SIZE; commEnd++) {
    const b = data[commEnd];
    if (b === 0) break;
    if (!isPlain(b, false)) return undefined;
  }
  const view = viewOf(data);
  const at = data.byteOffset;
  const argsCount = view.getUint32(at + ARGS_COUNT_AT, true);
  const size = Math.min(
    view.getUint32(at + ARGS_SIZE_AT, true),
    ARGS_BYTES,
    data.length - HEADER_SIZE,
  );
  // The arguments end at the NUL of the last one kept; bytes after it are not shown.
  let argsEnd = HEADER_SIZE, seen = 0;
  for (let i = HEADER_SIZE; i < HEADER_SIZE + size && seen < argsCount; i++) {
    const b = data[i];
    if (b === 0) {
      seen++;
      argsEnd = i + 1;
    } else if (!isPlain(b, o.quote)) return undefined;
  }
  const comm = asciiText(data, COMM_AT, commEnd);
  if (o.name !== undefined && !comm.includes(o.name)) return "";
  // Each argument followed by a space: the NULs become the spaces.
  const joined = asciiText(data, HEADER_SIZE, argsEnd);
  let args = o.quote
    ? (joined === "" ? "" : '"' + joined.slice(0, -1).replaceAll("\0", '" "') + '" ')
    : joined.replaceAll("\0", " ");
  if (argsCount === o.maxArgs + 1) args += " ...";
  const uid = view.getUint32(at + UID_AT, true);
  return (o.time ? formatTimeOfDay(new Date()).padEnd(8) + " " : "") +
    (o.timestamp ? formatSecondsColumn((performance.now() - start) / 1000) + " " : "") +
    (o.printUid ? String(uid).padEnd(6) + " " : "") +
    comm.padEnd(16) + " " + String(view.getUint32(at + PID_AT, true)).padEnd(6) + " " +
    String(view.getUint32(at + PPID_AT, true)).padEnd(6) + " " +
    String(view.getInt32(at + RETVAL_AT, true)).padStart(3) + " " + args + "\n";
}

/**
 * Text as libbpf-tools prints it, but safe on a terminal: control characters,
 * invalid bytes and bidi controls escaped (escapeText), a backslash printed
 * once, as the C tool prints it (it is not doubled: only what must be escaped is).
 */
function shown(text: string): string {
  return text.includes("\\")
    ? text.split("\\").map((t) => escapeText(t)).join("\\")
    : escapeText(text);
}

function formatArgs(x: Exec, quote: boolean): string {
  const parts = x.args.map((a) => {
    const text = shown(a);
    return quote ? `"${text.replaceAll('"', '\\"')}" ` : `${text} `;
  });
  return parts.join("") + (x.truncated ? " ..." : "");
}

function header(o: Options): string {
  return (o.time ? "TIME".padEnd(9) : "") + (o.timestamp ? "TIME(s)".padEnd(8) + " " : "") +
    (o.printUid ? "UID".padEnd(6) + " " : "") +
    `${"PCOMM".padEnd(16)} ${"PID".padEnd(6)} ${"PPID".padEnd(6)} RET ARGS\n`;
}

/** The -t time origin: when tracing started. */
interface Clock {
  start: number;
}

function jsonFields(data: Uint8Array, o: Options, clock: Clock) {
  const x = decodeExec(data, o);
  if (o.name !== undefined && !x.comm.includes(o.name)) return;
  if (o.line !== undefined && !x.args.join(" ").includes(o.line)) return;
  const elapsed = (performance.now() - clock.start) / 1000;
  return {
    ...(o.timestamp ? { elapsed: Number(elapsed.toFixed(3)) } : {}),
    comm: x.comm,
    pid: x.pid,
    ppid: x.ppid,
    uid: x.uid,
    ret: x.ret,
    args: x.args,
    truncated: x.truncated,
  };
}

function textLine(data: Uint8Array, o: Options, clock: Clock): string | undefined {
  if (o.line === undefined) {
    const line = plainLine(data, o, clock.start);
    if (line !== undefined) return line === "" ? undefined : line;
  }
  const x = decodeExec(data, o);
  if (o.name !== undefined && !x.comm.includes(o.name)) return;
  if (o.line !== undefined && !x.args.join(" ").includes(o.line)) return;
  const elapsed = (performance.now() - clock.start) / 1000;
  return (o.time ? formatTimeOfDay(new Date()).padEnd(8) + " " : "") +
    (o.timestamp ? formatSecondsColumn(elapsed) + " " : "") +
    (o.printUid ? String(x.uid).padEnd(6) + " " : "") +
    `${shown(x.comm).padEnd(16)} ${String(x.pid).padEnd(6)} ` +
    `${String(x.ppid).padEnd(6)} ${String(x.ret).padStart(3)} ${formatArgs(x, o.quote)}\n`;
}

export const tool = eventTool({
  name: "execsnoop",
  summary: "Trace exec syscalls.",
  examples: [
    ["execsnoop", "trace all exec() syscalls"],
    ["execsnoop -x", "include failed exec()s"],
    ["execsnoop -T", "include time (HH:MM:SS)"],
    ["execsnoop -U", "include UID"],
    ["execsnoop -u 1000", "only trace UID 1000"],
    ["execsnoop -u user", "get user UID and trace only them"],
    ["execsnoop -t", "include timestamps"],
    ["execsnoop -q", 'add "quotemarks" around arguments'],
    ["execsnoop -n main", 'only print command lines containing "main"'],
    ["execsnoop -l tpkg", "only print commands whose arguments contain tpkg"],
    ["execsnoop -c CG", "trace processes under cgroup v2 path CG"],
    ["execsnoop -P 181", "only trace new processes whose parent PID is 181"],
    ["execsnoop --max-args 40", "show up to 40 arguments"],
  ],
  flags: {
    time: flag("include time column on output (HH:MM:SS)", "T"),
    timestamp: flag("include timestamp on output", "t"),
    fails: flag("include failed exec()s", "x"),
    uid: option("USER", "trace this UID (or user name) only", uidArg, { short: "u" }),
    quote: flag('add quotemarks (") around arguments', "q"),
    name: option("NAME", "only print commands whose name contains NAME", nonEmpty, {
      short: "n",
    }),
    line: option("LINE", "only print commands whose arguments contain LINE", nonEmpty, {
      short: "l",
    }),
    printUid: flag("print UID column", "U", "print-uid"),
    cgroup: option("CG", "trace processes in this cgroup v2 path only", cgroupPath, { short: "c" }),
    ppid: option("PPID", "trace this parent PID only", integer(1, 4194304, "PPID"), {
      short: "P",
    }),
    maxArgs: optionWithDefault(
      "MAX_ARGS",
      `maximum number of arguments shown (default ${DEFAULT_MAX_ARGS})`,
      integer(1, TOTAL_MAX_ARGS, "MAX_ARGS"),
      DEFAULT_MAX_ARGS,
      { long: "max-args" },
    ),
  },
  variants: [
    ["-x"],
    ["-u", "0"],
    ["-n", "sh"],
    ["-P", "1"],
    ["--max-args", "5"],
    ["-c", cgroupV2Root()],
  ],
}, {
  recordSize: execEvent.size,
  build: buildPrograms,
  initMaps: (o, maps) => o.cgroup !== undefined && setCgroup(maps.get(cgroupMap)!, o.cgroup),
  prepare: (): Clock => ({ start: performance.now() }),
  started: (_session, _o, clock) => void (clock.start = performance.now()),
  header,
  text: textLine,
  json: jsonFields,
});

if (import.meta.main) await tool.main();
