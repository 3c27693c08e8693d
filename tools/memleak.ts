#!/usr/bin/env -S deno run -A
/**
 * memleak: outstanding (not yet freed) allocations of a process, grouped by
 * the user stack that allocated them, every interval: the stacks that hold
 * the most bytes, allocations older than -o ms only.
 *
 * Events: uprobes on the C library's allocators (malloc, calloc, realloc,
 * posix_memalign, aligned_alloc, valloc, memalign, pvalloc, mmap) and
 * uretprobes on their returns, uprobes on free and munmap. The entry keeps
 * the size per thread; the return records the address with its size, time
 * and user stack (bpf_get_stackid at the return: the allocator's caller
 * and up); free/munmap forget the address. Only the -p process (or the -c
 * command, started once the probes are attached) is traced; kernel
 * allocations are not (bcc's mode without -p needs kprobes). Output and
 * flags follow bcc memleak.
 *
 *     # deno run -A tools/memleak.ts -p $(pgrep -n leaky) 5
 *     Attaching to pid 4242, Ctrl+C to quit.
 *     [11:16:33] Top 10 stacks with outstanding allocations:
 *     	2400 bytes in 12 allocations from stack
 *     		bpftk_leak+0x1e [leaky]
 *     		main+0x4f [leaky]
 *     		__libc_start_call_main+0x7a [libc.so.6]
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import { type IntervalOptions, intervalTool } from "../lib/cli/drivers/interval.ts";
import {
  count,
  integer,
  nonEmpty,
  option,
  optionWithDefault,
  pidValue,
  positional,
  readableFile,
  seconds,
} from "../lib/cli/flags.ts";
import type { Session } from "../lib/cli/session.ts";
import { StackTraces } from "../lib/cli/stack_maps.ts";
import { UsageError } from "../lib/cli/usage.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import type { Probe } from "../lib/dsl/program.ts";
import { arg, retval, uprobe } from "../lib/dsl/pt_regs.ts";
import { r0, r1, r10, r2, r3, r7, r8, r9 } from "../lib/dsl/registers.ts";
import { defineStackErrorMap, defineStackMap, stackId } from "../lib/dsl/stacks.ts";
import { escapeText } from "../lib/format/escape.ts";
import { formatTimeOfDay } from "../lib/format/time.ts";
import { monotonicNs } from "../lib/kernel/libc.ts";
import { ElfFile } from "../lib/symbols/elf.ts";
import { findLibrary } from "../lib/symbols/library_path.ts";
import { UserSymbolizer } from "../lib/symbols/user.ts";
import { PausedCommand } from "../lib/kernel/paused_command.ts";

/** Allocations tracked at once (libbpf-tools: 1000000; each entry 32 bytes here). */
const MAX_ALLOCS = 1 << 18;

/** An allocator: which argument holds the size (or two multiplied), and the address. */
interface Allocator {
  name: string;
  size: number | [number, number];
  /** posix_memalign: the address is stored through this argument; the return is 0 on success. */
  outArg?: number;
  /** realloc: this argument is freed first. */
  frees?: number;
  /** mmap: MAP_FAILED, not NULL, means no allocation. */
  failed?: bigint;
}

const ALLOCATORS: Allocator[] = [
  { name: "malloc", size: 0 },
  { name: "calloc", size: [0, 1] },
  { name: "realloc", size: 1, frees: 0 },
  { name: "posix_memalign", size: 2, outArg: 0 },
  { name: "aligned_alloc", size: 1 },
  { name: "valloc", size: 0 },
  { name: "memalign", size: 1 },
  { name: "pvalloc", size: 0 },
  { name: "mmap", size: 1, failed: -1n },
];
/** Functions that release the address in their first argument. */
const RELEASERS = ["free", "munmap"];

/** What the operator asked for. */
interface Options extends IntervalOptions {
  pid?: number;
  command?: string;
  olderMs: number;
  top: number;
  sampleRate: number;
  minSize?: number;
  maxSize?: number;
  obj: string;
}

// --- BPF side ---------------------------------------------------------------

/** Size asked for, by thread, from an allocator's entry to its return. */
const sizes = defineMap({
  name: "sizes",
  type: "hash",
  keySize: 4,
  valueSize: 8,
  maxEntries: 10240,
});
/** posix_memalign's out pointer, by thread. */
const memptrs = defineMap({
  name: "memptrs",
  type: "hash",
  keySize: 4,
  valueSize: 8,
  maxEntries: 10240,
});
/** Outstanding allocations: address -> {u64 size, u64 ns, s64 stack id}. */
const allocs = defineMap({
  name: "allocs",
  type: "hash",
  keySize: 8,
  valueSize: 24,
  maxEntries: MAX_ALLOCS,
});
const stacks = defineStackMap({ name: "stack_traces", storageSize: 10240 });
const stackErrors = defineStackErrorMap();

/** Returns unless the caller is the traced process. */
function onlyTraced(p: Probe, pid: number): void {
  p.filterCurrentTgid(pid);
}

/** Entry: keep the size (r7) for this thread, when it passes -z/-Z and the sampling. */
function keepSize(p: Probe, o: Options): void {
  if (o.minSize !== undefined) p.returnIf(r7, "<", o.minSize);
  if (o.maxSize !== undefined) p.returnIf(r7, ">", o.maxSize);
  if (o.sampleRate > 1) {
    p.ktime(r0).alu("mod", r0, o.sampleRate).returnIf(r0, "!=", 0);
  }
  const key = p.stack(4), value = p.stack(8);
  p.call("get_current_pid_tgid").store("u32", r10, key, r0);
  p.store("u64", r10, value, r7).update(sizes, key, value);
}

/** Forgets the allocation at the address in `addr` (free, munmap, realloc's old block). */
function forget(p: Probe, addr: typeof r7): void {
  const key = p.stack(8);
  p.store("u64", r10, key, addr).delete(allocs, key);
}

function entryProgram(a: Allocator, o: Options, pid: number): Probe {
  const p = uprobe(o.obj, a.name, { name: `mleak_${a.name.slice(0, 8)}` });
  onlyTraced(p, pid);
  if (a.frees !== undefined) {
    arg(p, r7, a.frees);
    p.if(r7, "!=", 0, () => forget(p, r7));
  }
  if (a.outArg !== undefined) {
    const key = p.stack(4), value = p.stack(8);
    arg(p, r8, a.outArg);
    p.call("get_current_pid_tgid").store("u32", r10, key, r0);
    p.store("u64", r10, value, r8).update(memptrs, key, value);
  }
  if (Array.isArray(a.size)) {
    arg(p, r7, a.size[0]);
    arg(p, r8, a.size[1]);
    p.alu("mul", r7, r8);
  } else arg(p, r7, a.size);
  keepSize(p, o);
  return p.ret(0);
}

function returnProgram(a: Allocator, o: Options, pid: number): Probe {
  const p = uprobe(o.obj, a.name, { retprobe: true, name: `mleak_r${a.name.slice(0, 7)}` });
  const key = p.stack(4), value = p.stack(24), addrKey = p.stack(8), done = p.label();
  onlyTraced(p, pid);
  p.call("get_current_pid_tgid").store("u32", r10, key, r0);
  p.lookup(sizes, key).returnIf(r0, "==", 0);
  p.load(r9, "u64", r0, 0);
  p.delete(sizes, key);
  if (a.outArg !== undefined) {
    // posix_memalign(&p, ...) returns 0 and stores the block through its first argument.
    retval(p, r7).mov32(r7, r7);
    p.lookup(memptrs, key).returnIf(r0, "==", 0).load(r8, "u64", r0, 0);
    p.delete(memptrs, key);
    p.returnIf(r7, "!=", 0);
    p.store("u64", r10, addrKey, 0).stackPtr(r1, addrKey).mov(r2, 8).mov(r3, r8)
      .call("probe_read_user").load(r7, "u64", r10, addrKey);
  } else retval(p, r7);
  p.returnIf(r7, "==", 0);
  if (a.failed !== undefined) {
    p.mov64(r1, a.failed);
    p.jumpIf(r7, "==", r1, done);
  }
  stackId(p, r8, stacks, { user: true, errors: stackErrors });
  p.store("u64", r10, value, r9);
  p.ktime(r0).store("u64", r10, value + 8, r0);
  p.store("u64", r10, value + 16, r8);
  p.store("u64", r10, addrKey, r7).update(allocs, addrKey, value);
  p.bind(done);
  return p.ret(0);
}

function releaseProgram(name: string, o: Options, pid: number): Probe {
  const p = uprobe(o.obj, name, { name: `mleak_${name}` });
  onlyTraced(p, pid);
  arg(p, r7, 0).returnIf(r7, "==", 0);
  forget(p, r7);
  return p.ret(0);
}

/** The traced process: -p, or the -c command (its PID known once started). */
let commandPid: number | undefined;

function buildPrograms(o: Options) {
  const pid = o.pid ?? commandPid ?? 1;
  const elf = ElfFile.open(o.obj);
  const have = (name: string) => elf.symbol(name) !== undefined;
  const programs: Probe[] = [];
  for (const a of ALLOCATORS.filter((a) => have(a.name))) {
    programs.push(entryProgram(a, o, pid), returnProgram(a, o, pid));
  }
  for (const name of RELEASERS.filter(have)) programs.push(releaseProgram(name, o, pid));
  if (programs.length === 0) throw new UsageError(`${o.obj} has no malloc or free`);
  return programs.map((p) => p.build());
}

// --- user side --------------------------------------------------------------

/** State kept between reports: the symbols, and the process's maps while it lives. */
interface Context {
  pid: number;
  symbols: UserSymbolizer;
  command?: PausedCommand;
  mapsText?: string;
}

/** Reads the process's mappings again when they changed (a -c command after its exec). */
function refreshMaps(ctx: Context): void {
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${ctx.pid}/maps`);
  } catch {
    return; // exited: keep the last address space read
  }
  if (text === ctx.mapsText) return;
  ctx.mapsText = text;
  ctx.symbols = new UserSymbolizer();
  ctx.symbols.process(ctx.pid);
}

interface StackReport {
  bytes: number;
  allocations: number;
  frames: string[];
}

function readReport(session: Session, o: Options, ctx: Context): StackReport[] {
  refreshMaps(ctx);
  const now = monotonicNs();
  const olderNs = BigInt(o.olderMs) * 1_000_000n;
  const byStack = new Map<number, { bytes: number; allocations: number }>();
  for (const [, v] of session.maps.get(allocs)!.entries()) {
    const d = new DataView(v.buffer);
    const size = Number(d.getBigUint64(0, true));
    const ts = d.getBigUint64(8, true);
    const id = Number(d.getBigInt64(16, true));
    if (now - ts < olderNs) continue;
    const s = byStack.get(id) ?? { bytes: 0, allocations: 0 };
    s.bytes += size;
    s.allocations++;
    byStack.set(id, s);
  }
  const traces = new StackTraces(session.maps.get(stacks)!);
  const proc = ctx.symbols.process(ctx.pid);
  return [...byStack].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, o.top).reverse()
    .map(([id, s]) => ({
      ...s,
      frames: id < 0 ? ["[Missed User Stack]"] : traces.get(id).map((addr) => {
        const sym = proc.resolve(addr);
        if (!sym) return `[unknown] [0x${addr.toString(16)}]`;
        const module = sym.module.split("/").pop();
        return `${sym.name}+0x${sym.offset.toString(16)} [${module}]`;
      }),
    }));
}

function reportText(stacks: StackReport[], o: Options): string {
  let out = `[${formatTimeOfDay(new Date())}] Top ${o.top} stacks with outstanding allocations:\n`;
  for (const s of stacks) {
    out += `\t${s.bytes} bytes in ${s.allocations} allocations from stack\n` +
      s.frames.map((f) => `\t\t${escapeText(f)}\n`).join("");
  }
  return out;
}

export const tool = intervalTool({
  name: "memleak",
  summary: "Trace outstanding memory allocations that weren't freed.",
  examples: [
    ["memleak -p $(pidof app)", "allocations of app, every 5 s"],
    ["memleak -p $(pidof app) 10", "the same every 10 seconds"],
    ["memleak -c './leaky arg'", "run ./leaky and trace it"],
    ["memleak -p 1234 -o 60000", "only those older than a minute"],
    ["memleak -p 1234 -s 5", "sample every 5th allocation"],
    ["memleak -p 1234 -z 1024 -Z 65536", "only allocations of 1-64 KiB"],
    ["memleak -p 1 -O /lib/libtcmalloc.so", "another allocator"],
  ],
  flags: {
    pid: option("PID", "the PID to trace", pidValue, { short: "p" }),
    olderMs: optionWithDefault(
      "OLDER",
      "prune allocations younger than this, in ms (500)",
      integer(0, 2 ** 40, "age"),
      500,
      { short: "o", long: "older" },
    ),
    command: option("COMMAND", "execute and trace the specified command", nonEmpty, {
      short: "c",
    }),
    sampleRate: optionWithDefault(
      "RATE",
      "sample every N-th allocation to decrease the overhead",
      integer(1, 2 ** 31, "sample rate"),
      1,
      { short: "s", long: "sample-rate" },
    ),
    top: optionWithDefault("TOP", "display only this many top allocating stacks", count, 10, {
      short: "T",
      long: "top",
    }),
    minSize: option("MIN", "capture only allocations larger than this size", integer(0, 2 ** 53), {
      short: "z",
      long: "min-size",
    }),
    maxSize: option("MAX", "capture only allocations smaller than this size", integer(0, 2 ** 53), {
      short: "Z",
      long: "max-size",
    }),
    obj: option("OBJ", "attach to allocator functions in this object", readableFile, {
      short: "O",
    }),
  },
  positionals: {
    interval: positional(
      "interval",
      "interval in seconds to print outstanding allocations",
      seconds,
    ),
    count: positional("count", "number of times to print the report before exiting", count),
  },
  variants: [["-p", "1"], ["-p", "1", "-s", "3", "-z", "16", "-Z", "4096"]],
  options: (v): Options => {
    if (v.pid !== undefined && v.command !== undefined) {
      throw new UsageError("-p and -c cannot be used together");
    }
    if (v.minSize !== undefined && v.maxSize !== undefined && v.minSize > v.maxSize) {
      throw new UsageError("-z MIN is larger than -Z MAX");
    }
    const obj = v.obj ?? findLibrary("libc.so.6");
    if (obj === undefined) throw new UsageError("no libc.so.6 found: give the allocator with -O");
    return {
      olderMs: v.olderMs,
      top: v.top,
      sampleRate: v.sampleRate,
      obj,
      interval: v.interval ?? 5,
      ...(v.count === undefined ? {} : { count: v.count }),
      ...(v.pid === undefined ? {} : { pid: v.pid }),
      ...(v.command === undefined ? {} : { command: v.command }),
      ...(v.minSize === undefined ? {} : { minSize: v.minSize }),
      ...(v.maxSize === undefined ? {} : { maxSize: v.maxSize }),
    };
  },
}, {
  banner: (o) =>
    o.pid !== undefined
      ? `Attaching to pid ${o.pid}, Ctrl+C to quit.`
      : `Executing '${o.command}' and tracing the resulting process.`,
  prepare: (o): Context => {
    if (o.pid === undefined && o.command === undefined) {
      throw new UsageError(
        "give -p PID or -c COMMAND: kernel allocations (bcc's default) are not traced here",
      );
    }
    const command = o.command === undefined ? undefined : new PausedCommand(o.command);
    if (command) commandPid = command.child.pid;
    return { pid: o.pid ?? command!.child.pid, symbols: new UserSymbolizer(), command };
  },
  build: buildPrograms,
  started: (_session, _o, _json, ctx) => {
    refreshMaps(ctx);
    if (!ctx.command) return;
    ctx.command.go();
    // Keep the address space of the command as it runs (it may exit before the report).
    const timer = setInterval(() => refreshMaps(ctx), 100);
    const command = ctx.command;
    return {
      [Symbol.dispose]() {
        clearInterval(timer);
        command[Symbol.dispose]();
      },
    };
  },
  ownHeading: true,
  read: readReport,
  text: reportText,
  json: (stacks) => ({ stacks }),
});

if (import.meta.main) await tool.main();
