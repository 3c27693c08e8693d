#!/usr/bin/env -S deno run -A
/**
 * filetop: file reads and writes by process and file, top-style: per
 * interval, the busiest (thread, file) pairs with their read and write calls
 * and the Kbytes asked for.
 *
 * Events: raw_syscalls:sys_enter for read, pread64, write and pwrite64 (the
 * syscalls that call vfs_read / vfs_write, where libbpf-tools filetop puts
 * its kprobes, which this kernel lacks); the file comes from the task's file
 * table (the fd argument), and the bytes are the count argument, as the
 * kprobes count them. Only regular files unless -a (T: R regular, S socket,
 * O other). Counters are removed at each report. Output and flags follow
 * libbpf-tools filetop; the screen is cleared before each report unless -C.
 *
 *     # deno run -A tools/filetop.ts -C
 *     10:15:02 loadavg: 0.10 0.05 0.01 1/182 4121
 *
 *     TID     COMM             READS  WRITES R_Kb    W_Kb    T FILE
 *     4121    dd               0      1024   0       4096    R big.out
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import {
  type IntervalOptions,
  intervalPositionals,
  intervalTool,
} from "../lib/cli/drivers/interval.ts";
import { flag, integer, option, optionWithDefault, pidValue } from "../lib/cli/flags.ts";
import type { Session } from "../lib/cli/session.ts";
import { UsageError } from "../lib/cli/usage.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import type { Probe } from "../lib/dsl/program.ts";
import {
  jumpToSyscalls,
  rawSyscallProbe,
  skipCompatSyscall,
  syscallArg,
} from "../lib/dsl/raw_syscalls.ts";
import { r0, r1, r10, r2, r7, r8, r9 } from "../lib/dsl/registers.ts";
import { char, defineSchema } from "../lib/dsl/schema.ts";
import { currentFileOfFd } from "../lib/dsl/task_file.ts";
import { escapeText } from "../lib/format/escape.ts";
import { formatTimeOfDay } from "../lib/format/time.ts";

const SORTS = ["all", "reads", "writes", "rbytes", "wbytes"] as const;
type Sort = (typeof SORTS)[number];

/** What the operator asked for. */
interface Options extends IntervalOptions {
  noClear: boolean;
  all: boolean;
  pid?: number;
  rows: number;
  sort: Sort;
}

// --- BPF side ---------------------------------------------------------------

/** Which file, for which thread. */
const fileKey = defineSchema("file_id", {
  inode: "u64",
  dev: "u32",
  rdev: "u32",
  pid: "u32",
  tid: "u32",
});
/** Its counts, and what to print. */
const fileStat = defineSchema("file_stat", {
  reads: "u64",
  readBytes: "u64",
  writes: "u64",
  writeBytes: "u64",
  pid: "u32",
  tid: "u32",
  type: "u32",
  _pad: "u32",
  comm: char(16),
  name: char(64),
});
const entries = defineMap({
  name: "entries",
  type: "hash",
  keySize: fileKey.size,
  valueSize: fileStat.size,
  maxEntries: 10240,
});

const S_IFMT = 0o170000, S_IFREG = 0o100000, S_IFSOCK = 0o140000;
const BPF_NOEXIST = 1;

function enterProgram(o: Options): Probe {
  const p = rawSyscallProbe("enter", "filetop");
  const read = p.label(), write = p.label(), common = p.label(), other = p.label();
  const isWrite = p.stack(8), key = p.stack(fileKey.size), value = p.stack(fileStat.size);
  p.ctx(r7, "id");
  jumpToSyscalls(p, r7, [[["read", "pread64"], read], [["write", "pwrite64"], write]], other);
  p.bind(read).store("u64", r10, isWrite, 0).goto(common);
  p.bind(write).store("u64", r10, isWrite, 1);
  p.bind(common);
  if (o.pid !== undefined) {
    p.call("get_current_pid_tgid").rsh(r0, 32).jumpIf(r0, "!=", o.pid, other);
  }
  skipCompatSyscall(p, other);
  syscallArg(p, r7, 0); // the fd
  currentFileOfFd(p, r8, r7, other);
  p.field(r9, r8, "file", "f_inode->i_mode").and(r9, S_IFMT);
  if (!o.all) p.jumpIf(r9, "!=", S_IFREG, other);

  p.zeroStack(key, fileKey.size);
  p.field(r1, r8, "file", "f_inode->i_ino").store("u64", r10, key + fileKey.offset("inode"), r1);
  p.field(r1, r8, "file", "f_inode->i_sb->s_dev");
  p.store("u32", r10, key + fileKey.offset("dev"), r1);
  p.field(r1, r8, "file", "f_inode->i_rdev");
  p.store("u32", r10, key + fileKey.offset("rdev"), r1);
  p.call("get_current_pid_tgid");
  p.store("u32", r10, key + fileKey.offset("tid"), r0).rsh(r0, 32);
  p.store("u32", r10, key + fileKey.offset("pid"), r0);

  // A new entry: its names and type, once.
  const found = p.label();
  p.lookup(entries, key).jumpIf(r0, "!=", 0, found);
  p.zeroStack(value, fileStat.size);
  p.load(r1, "u32", r10, key + fileKey.offset("pid"));
  p.store("u32", r10, value + fileStat.offset("pid"), r1);
  p.load(r1, "u32", r10, key + fileKey.offset("tid"));
  p.store("u32", r10, value + fileStat.offset("tid"), r1);
  p.mov(r1, "O".charCodeAt(0));
  p.if(r9, "==", S_IFREG, () => p.mov(r1, "R".charCodeAt(0)));
  p.if(r9, "==", S_IFSOCK, () => p.mov(r1, "S".charCodeAt(0)));
  p.store("u32", r10, value + fileStat.offset("type"), r1);
  p.stackPtr(r1, value + fileStat.offset("comm")).mov(r2, 16).call("get_current_comm");
  p.stackPtr(r9, value);
  p.field(r7, r8, "file", "f_path.dentry->d_name.name");
  fileStat.readString(p, r9, "name", r7, "kernel");
  p.update(entries, key, value, BPF_NOEXIST);
  p.lookup(entries, key).jumpIf(r0, "==", 0, other);
  p.bind(found).mov(r9, r0);

  // reads/writes + 1, bytes + the count asked for (the third argument)
  syscallArg(p, r7, 2);
  p.load(r1, "u64", r10, isWrite);
  p.if(r1, "==", 0, () => {
    p.mov(r2, 1).atomicAdd("u64", r9, fileStat.offset("reads"), r2);
    p.atomicAdd("u64", r9, fileStat.offset("readBytes"), r7);
  }, () => {
    p.mov(r2, 1).atomicAdd("u64", r9, fileStat.offset("writes"), r2);
    p.atomicAdd("u64", r9, fileStat.offset("writeBytes"), r7);
  });
  p.bind(other);
  return p.ret(0);
}

// --- user side --------------------------------------------------------------

interface Row {
  pid: number;
  tid: number;
  comm: string;
  file: string;
  type: string;
  reads: number;
  writes: number;
  readBytes: number;
  writeBytes: number;
}

/** Reads every entry, then removes them all (as libbpf-tools). */
function readRows(session: Session): Row[] {
  const map = session.maps.get(entries)!;
  const rows = map.entries().map(([, v]) => {
    const s = fileStat.decode(v);
    return {
      pid: s.pid,
      tid: s.tid,
      comm: s.comm,
      file: s.name,
      type: String.fromCharCode(s.type),
      reads: Number(s.reads),
      writes: Number(s.writes),
      readBytes: Number(s.readBytes),
      writeBytes: Number(s.writeBytes),
    };
  });
  for (const k of map.keys()) map.delete(k);
  return rows;
}

/** libbpf-tools' orders: descending, "all" by the sum of the four counts. */
function sortKey(r: Row, sort: Sort): number {
  switch (sort) {
    case "reads":
      return r.reads;
    case "writes":
      return r.writes;
    case "rbytes":
      return r.readBytes;
    case "wbytes":
      return r.writeBytes;
    default:
      return r.reads + r.writes + r.readBytes + r.writeBytes;
  }
}

function top(rows: Row[], o: Options): Row[] {
  return [...rows].sort((a, b) => sortKey(b, o.sort) - sortKey(a, o.sort)).slice(0, o.rows);
}

function loadavg(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").trim();
  } catch {
    return "";
  }
}

function formatText(rows: Row[], o: Options): string {
  const head = (o.noClear ? "" : "\x1b[H\x1b[2J") +
    `${formatTimeOfDay(new Date()).padEnd(8)} loadavg: ${loadavg()}\n\n` +
    `${"TID".padEnd(7)} ${"COMM".padEnd(16)} ${"READS".padEnd(6)} ${"WRITES".padEnd(6)} ` +
    `${"R_Kb".padEnd(7)} ${"W_Kb".padEnd(7)} T FILE\n`;
  const lines = top(rows, o).map((r) =>
    `${String(r.tid).padEnd(7)} ${escapeText(r.comm).padEnd(16)} ${String(r.reads).padEnd(6)} ` +
    `${String(r.writes).padEnd(6)} ${String(Math.floor(r.readBytes / 1024)).padEnd(7)} ` +
    `${String(Math.floor(r.writeBytes / 1024)).padEnd(7)} ${r.type} ${escapeText(r.file)}\n`
  );
  return head + lines.join("") + "\n";
}

function sortOption(text: string): Sort {
  if (!(SORTS as readonly string[]).includes(text)) {
    throw new UsageError(`invalid sort '${text}' (one of ${SORTS.join(", ")})`);
  }
  return text as Sort;
}

export const tool = intervalTool({
  name: "filetop",
  summary: "Trace file reads and writes by process and file, top-style.",
  examples: [
    ["filetop", "file I/O top, refresh every 1s"],
    ["filetop -p 1216", "only trace PID 1216"],
    ["filetop -a", "all files, not only regular ones"],
    ["filetop -s rbytes -r 10 -C 5 3", "by read bytes, 10 rows, no clear, 5s x 3"],
  ],
  flags: {
    noClear: flag("don't clear the screen", "C", "noclear"),
    all: flag("include special files (sockets, pipes, ...)", "a", "all"),
    pid: option("PID", "trace this PID only", pidValue, { short: "p" }),
    rows: optionWithDefault("ROWS", "maximum rows to print (20)", integer(1, 1 << 20, "rows"), 20, {
      short: "r",
      long: "rows",
    }),
    sort: optionWithDefault("SORT", `sort by ${SORTS.join(", ")} (all)`, sortOption, "all", {
      short: "s",
      long: "sort",
    }),
  },
  positionals: intervalPositionals,
  variants: [["-a"], ["-p", "1"]],
  options: (v): Options => ({ ...v, timestamp: false }),
}, {
  build: (o) => [enterProgram(o).build()],
  read: readRows,
  text: formatText,
  json: (rows, o) => ({
    files: top(rows, o).map((r) => ({
      pid: r.pid,
      tid: r.tid,
      comm: r.comm,
      file: r.file,
      type: r.type,
      reads: r.reads,
      writes: r.writes,
      read_bytes: r.readBytes,
      write_bytes: r.writeBytes,
    })),
  }),
  defaultInterval: 1,
  ownHeading: true,
});

if (import.meta.main) await tool.main();
