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
// the modules it uses.
import { intervalPositionals, intervalTool } from "../lib/cli/drivers/interval.ts";
import type { Session } from "../lib/cli/session.ts";
import type { BuiltProgram, Label } from "../lib/dsl/builder.ts";
import { kprobe } from "../lib/dsl/kprobe.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import type { Probe } from "../lib/dsl/program.ts";
import {
  jumpToSyscalls,
  rawSyscallProbe,
  skipCompatSyscall,
  syscallArg,
} from "../lib/dsl/raw_syscalls.ts";
import { r10, r7 } from "../lib/dsl/registers.ts";
import { formatTimeOfDay } from "../lib/format/time.ts";
import { hasKprobes } from "../lib/kernel/features.ts";

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
  return STATS.map((stat) => count(kprobe(VFS_FUNCTIONS[stat], { name: `vfsstat_${stat}` }), stat));
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

/**
 * The programs: kprobes where the kernel has them, else the syscall path.
 * Exported so that both paths can be built (and verified) on any kernel.
 */
export function buildPrograms(useKprobes: boolean): BuiltProgram[] {
  return (useKprobes ? kprobePrograms() : syscallPrograms()).map((p) => p.build());
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

/** Counts per second over the interval: the totals' growth since the last read. */
function readRates(session: Session, interval: number, last: { totals: bigint[] }): bigint[] {
  const totals = readTotals(session);
  const rates = totals.map((t, i) => (t - last.totals[i]) / BigInt(interval));
  last.totals = totals;
  return rates;
}

const NOTE = {
  kprobes: "counting with kprobes on vfs_read, vfs_write, vfs_fsync, vfs_open, vfs_create",
  syscalls: "no kprobes in this kernel: counting syscalls (raw_syscalls:sys_enter/sys_exit)",
};

export const tool = intervalTool({
  name: "vfsstat",
  summary: "Count some VFS calls, per second.",
  examples: [
    ["vfsstat", "interval one second"],
    ["vfsstat 5 3", "interval five seconds, three output lines"],
  ],
  flags: {},
  positionals: intervalPositionals,
  options: (v) => ({ ...v, interval: v.interval ?? 1, useKprobes: hasKprobes() }),
}, {
  banner: () =>
    "TIME".padEnd(8) + "  " + STATS.map((s) => ` ${(s.toUpperCase() + "/s").padStart(8)}`).join(""),
  build: (o) => buildPrograms(o.useKprobes),
  prepare: () => ({ totals: STATS.map(() => 0n) }),
  started: (session, o, _json, last) => {
    console.error(`vfsstat: ${o.useKprobes ? NOTE.kprobes : NOTE.syscalls}`);
    last.totals = readTotals(session);
  },
  read: (session, o, last) => readRates(session, o.interval, last),
  text: (rates) =>
    `${formatTimeOfDay(new Date()).padEnd(8)}: ${
      rates.map((r) => ` ${String(r).padStart(8)}`).join("")
    }\n`,
  json: (rates, o) => ({
    interval: o.interval,
    ...Object.fromEntries(STATS.map((s, i) => [s, Number(rates[i])])),
  }),
  // --prometheus: the per-CPU counters are never reset, so they are served as they are
  metrics: (_rates, _o, _ctx, session) => ({
    counters: {
      quantity: "calls",
      help: "VFS calls counted (read, write, fsync, open, create), by op.",
      label: "op",
      totals: Object.fromEntries(readTotals(session).map((t, i) => [STATS[i], Number(t)])),
    },
  }),
  // Ctrl-C: a partial interval has no per-second rate (as bcc)
  skipPartial: true,
  ownHeading: true,
});

if (import.meta.main) await tool.main();
