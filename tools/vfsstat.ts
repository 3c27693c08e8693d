#!/usr/bin/env -S deno run -A
/**
 * vfsstat: count VFS calls (reads, writes, fsyncs, opens, creates) and print
 * their rate per second, once per interval.
 *
 * Events, chosen at start and named on stderr:
 * - kprobes on vfs_read, vfs_write, vfs_fsync, vfs_open and vfs_create where
 *   the kernel has kprobes (as bcc and libbpf-tools vfsstat);
 * - otherwise the syscalls that lead to those calls, picked from
 *   raw_syscalls:sys_enter/sys_exit (two attachments, quick to detach):
 *   READ: read, pread64 (vfs_read's callers); WRITE: write, pwrite64;
 *   FSYNC: fsync, fdatasync; OPEN: open, openat, openat2, creat,
 *   open_by_handle_at returning a descriptor; CREATE: mknod/mknodat of a
 *   regular file (the only syscall path into vfs_create: open(O_CREAT)
 *   creates through the inode's own create operation, so the kprobe tool
 *   does not count those either). Opens done by the kernel itself (execve,
 *   firmware) are only seen by the kprobe path.
 * Counters are per-CPU and never reset: each interval prints the difference,
 * so no event falls between a read and a reset.
 *
 *     # deno run -A tools/vfsstat.ts 1 3
 *     vfsstat: no kprobes in this kernel: counting syscalls (raw_syscalls:sys_enter/sys_exit)
 *     TIME         READ/s  WRITE/s  FSYNC/s   OPEN/s CREATE/s
 *     10:40:01:      1243      502        0      139        0
 *     10:40:02:      1108      377        2      120        0
 *     10:40:03:      1376      615        0      152        0
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses. --dump code is imported on demand.
import { intervalCount, parseToolArgs } from "../lib/cli/args.ts";
import { writeOut } from "../lib/cli/output.ts";
import { runTool } from "../lib/cli/run.ts";
import { loadAndAttach, type Session } from "../lib/cli/session.ts";
import { intervals, StopSignal } from "../lib/cli/stop.ts";
import { formatHelp } from "../lib/cli/usage.ts";
import type { Label } from "../lib/dsl/builder.ts";
import { kernelLayouts } from "../lib/dsl/layouts.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import { Probe } from "../lib/dsl/program.ts";
import {
  jumpToSyscalls,
  rawSyscallProbe,
  skipCompatSyscall,
  syscallArg,
} from "../lib/dsl/raw_syscalls.ts";
import { r10, r7 } from "../lib/dsl/registers.ts";
import { stringifyJson } from "../lib/format/escape.ts";
import { formatTimeOfDay } from "../lib/format/time.ts";
import { hasKprobes } from "../lib/kernel/features.ts";

const HELP = {
  name: "vfsstat",
  summary: "Count some VFS calls, per second.",
  usage: "vfsstat [-h] [interval [count]]",
  examples: [
    ["vfsstat", "interval one second"],
    ["vfsstat 5 3", "interval five seconds, three output lines"],
  ] as [string, string][],
  flags: [],
};

/** The columns, in order (libbpf-tools' enum stat_types). */
const STATS = ["read", "write", "fsync", "open", "create"] as const;
type Stat = (typeof STATS)[number];

/** One u64 counter per column, per CPU. */
const stats = defineMap({
  name: "vfsstat_stats",
  type: "percpu_array",
  keySize: 4,
  valueSize: 8 * STATS.length,
  maxEntries: 1,
});

/** Adds one to the column's counter, and returns. */
function count(p: Probe, stat: Stat): Probe {
  const key = p.stack(4);
  p.store("u32", r10, key, 0).counterAdd(stats, key, 1, 8 * STATS.indexOf(stat));
  return p.ret(0);
}

// --- kprobe path ------------------------------------------------------------

const VFS_FUNCTIONS: Record<Stat, string> = {
  read: "vfs_read",
  write: "vfs_write",
  fsync: "vfs_fsync",
  open: "vfs_open",
  create: "vfs_create",
};

function kprobePrograms(): Probe[] {
  return STATS.map((stat) => {
    const func = VFS_FUNCTIONS[stat];
    const p = new Probe(
      `vfsstat_${stat}`,
      "kprobe",
      { kind: "kprobe", func, retprobe: false },
      { kind: "none" },
      kernelLayouts,
    );
    return count(p, stat);
  });
}

// --- syscall path -----------------------------------------------------------

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;

/** Syscalls counted when they start (vfs_read, vfs_write, vfs_fsync run for each). */
const COUNTED_AT_ENTER: [Stat, string[]][] = [
  ["read", ["read", "pread64"]],
  ["write", ["write", "pwrite64"]],
  ["fsync", ["fsync", "fdatasync"]],
];
/** Opens count when they return a descriptor: vfs_open ran. */
const OPENS = ["open", "openat", "openat2", "creat", "open_by_handle_at"];

/**
 * raw_syscalls:sys_enter: reads, writes, fsyncs, and mknods of regular
 * files (file type S_IFREG or 0: those reach vfs_create); mknod's mode is
 * its 2nd argument, mknodat's its 3rd.
 */
function syscallEnterProgram(): Probe {
  const p = rawSyscallProbe("enter", "vfsstat_enter");
  const other = p.label(), mknod = p.label(), mknodat = p.label(), create = p.label();
  const counted = COUNTED_AT_ENTER.map(([stat, names]) => ({ stat, names, label: p.label() }));
  p.ctx(r7, "id");
  jumpToSyscalls(p, r7, [
    ...counted.map((c) => [c.names, c.label] as [string[], Label]),
    [["mknod"], mknod],
    [["mknodat"], mknodat],
  ], other);
  for (const c of counted) {
    p.bind(c.label);
    skipCompatSyscall(p, other);
    count(p, c.stat);
  }
  p.bind(mknod);
  syscallArg(p, r7, 1);
  p.goto(create);
  p.bind(mknodat);
  syscallArg(p, r7, 2);
  p.bind(create);
  p.and(r7, S_IFMT);
  p.if(r7, "!=", 0, () => p.jumpIf(r7, "!=", S_IFREG, other));
  skipCompatSyscall(p, other);
  count(p, "create");
  p.bind(other);
  return p.ret(0);
}

/** raw_syscalls:sys_exit: opens that returned a descriptor. */
function syscallExitProgram(): Probe {
  const p = rawSyscallProbe("exit", "vfsstat_exit");
  const other = p.label(), open = p.label();
  p.ctx(r7, "id");
  jumpToSyscalls(p, r7, [[OPENS, open]], other);
  p.bind(open);
  p.ctx(r7, "ret").jumpIf(r7, "s<", 0, other);
  skipCompatSyscall(p, other);
  count(p, "open");
  p.bind(other);
  return p.ret(0);
}

function syscallPrograms(): Probe[] {
  return [syscallEnterProgram(), syscallExitProgram()];
}

// --- user side --------------------------------------------------------------

/** Sums each column over the CPUs (counters since the programs were attached). */
function readTotals(session: Session): bigint[] {
  const value = session.maps.get(stats)!.lookup(new Uint8Array(4));
  const totals = STATS.map(() => 0n);
  if (!value) return totals;
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
  const perCpu = 8 * STATS.length;
  for (let off = 0; off + perCpu <= value.byteLength; off += perCpu) {
    for (let i = 0; i < STATS.length; i++) totals[i] += view.getBigUint64(off + 8 * i, true);
  }
  return totals;
}

function header(): string {
  return "TIME".padEnd(8) + "  " + STATS.map((s) => ` ${(s.toUpperCase() + "/s").padStart(8)}`)
    .join("") +
    "\n";
}

await runTool("vfsstat", async () => {
  const { values, positionals } = parseToolArgs(Deno.args, {});
  const { interval = 1, count } = intervalCount(positionals);
  if (values.help) return writeOut(formatHelp(HELP));
  const useKprobes = hasKprobes();
  const programs = (useKprobes ? kprobePrograms() : syscallPrograms()).map((p) => p.build());
  if (values.dump) return writeOut((await import("../lib/cli/dump.ts")).dumpPrograms(programs));

  const session = loadAndAttach(programs, { verbose: values.verbose });
  console.error(
    useKprobes
      ? "vfsstat: counting with kprobes on vfs_read, vfs_write, vfs_fsync, vfs_open, vfs_create"
      : "vfsstat: no kprobes in this kernel: counting syscalls (raw_syscalls:sys_enter/sys_exit)",
  );
  const stop = new StopSignal();
  if (!values.json) writeOut(header());
  let previous = readTotals(session);
  try {
    for await (const _ of intervals(stop, interval, count)) {
      if (stop.stopped) break; // Ctrl-C: a partial interval has no per-second rate (as bcc)
      const totals = readTotals(session);
      const rates = totals.map((t, i) => (t - previous[i]) / BigInt(interval));
      previous = totals;
      const now = new Date();
      if (values.json) {
        const row = Object.fromEntries(STATS.map((s, i) => [s, Number(rates[i])]));
        writeOut(stringifyJson({ time: now.toISOString(), interval, ...row }) + "\n");
      } else {
        writeOut(
          `${formatTimeOfDay(now).padEnd(8)}: ` +
            rates.map((r) => ` ${String(r).padStart(8)}`).join("") + "\n",
        );
      }
    }
  } finally {
    stop.dispose();
  }
});
