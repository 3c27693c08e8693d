#!/usr/bin/env -S deno run -A
/**
 * stackcount: count the stacks that led to events (functions, tracepoints,
 * USDT probes matching a pattern), kernel and user stacks, counted in the
 * kernel; only the unique stacks and their counts come to user space, at
 * the end.
 *
 * Events: one program per place matched, as funccount (uprobes on the ELF
 * functions a glob or -r regexp matches, `t:CATEGORY:EVENT` tracepoints,
 * `u:LIB:PROBE` USDT sites; kernel functions need kprobes), each taking
 * the stacks with bpf_get_stackid into a stack trace map and counting them
 * by (process, stacks) in a hash. At a function's entry its caller's frame
 * is the last one set up, so the direct caller of a probed function may not
 * show (frame-pointer walks: build with -fno-omit-frame-pointer). Output
 * and flags follow bcc stackcount: stacks least frequent first, -P one per
 * process ("comm [PID]"), -f folded lines, -d "--" between kernel and user
 * frames, -D DURATION ("Detaching..." is left out of folded output, which
 * feeds flame graphs).
 *
 *     # deno run -A tools/stackcount.ts -P -U t:syscalls:sys_enter_getppid
 *     Tracing 1 functions for "t:syscalls:sys_enter_getppid"... Hit Ctrl-C to end.
 *
 *       bpftk_stack_leaf
 *       bpftk_stack_mid
 *       main
 *       __libc_start_call_main
 *         stwl [4242]
 *         7
 *
 *     Detaching...
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import { stackFlags, type StackOptions, stackTool } from "../lib/cli/drivers/stacks.ts";
import { flag, integer, option, pidValue, positional } from "../lib/cli/flags.ts";
import {
  expandTracepoints,
  expandUprobe,
  expandUsdt,
  isPattern,
  parseTarget,
} from "../lib/cli/probe_target.ts";
import type { Session } from "../lib/cli/session.ts";
import type { SymbolizedStack } from "../lib/cli/stack_report.ts";
import { UsageError } from "../lib/cli/usage.ts";
import { kprobe } from "../lib/dsl/kprobe.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import { type Probe, tracepoint } from "../lib/dsl/program.ts";
import { ProbeTargetError, uprobe } from "../lib/dsl/pt_regs.ts";
import { r0, r1, r10, r2, r8, r9 } from "../lib/dsl/registers.ts";
import { defineStackErrorMap, defineStackMap, stackId } from "../lib/dsl/stacks.ts";
import { decodeCString, escapeText } from "../lib/format/escape.ts";
import { foldedFrame } from "../lib/format/folded.ts";
import { ElfFile } from "../lib/symbols/elf.ts";

/** Places one run may probe (as funccount). */
const MAX_SITES = 1000;
const COMM_LEN = 16;
/** counts key: u32 tgid, s32 user stack id, s32 kernel stack id, char comm[16]. */
const KEY = { pid: 0, userStack: 4, kernelStack: 8, comm: 12, size: 28 } as const;
/** Stacks counted at most (bcc: 10240). */
const HASH_SIZE = 10240;

/** One place probed. */
type Site =
  | { kind: "uprobe"; binary: string; offset: number }
  | { kind: "tracepoint"; category: string; event: string }
  | { kind: "kprobe"; func: string };

/** What the operator asked for. */
interface Options extends StackOptions {
  pattern: string;
  sites: Site[];
  pid?: number;
  cpu?: number;
  perPid: boolean;
  userStacks: boolean;
  kernelStacks: boolean;
  stackSize: number;
}

/** The places a pattern names (USDT probes with semaphores are refused: nothing raises them here). */
function expand(pattern: string, regexp: boolean, pid?: number): Site[] {
  const t = parseTarget(pattern, { tracepoints: true, usdt: true, wildcards: true, regexp }, pid);
  switch (t.kind) {
    case "kprobe":
      if (isPattern(t.func, regexp)) {
        throw new ProbeTargetError(
          `'${pattern}': kernel function patterns need kprobes (and their function list)`,
        );
      }
      return [{ kind: "kprobe", func: t.func }];
    case "uprobe": {
      const elf = ElfFile.open(t.binary);
      return expandUprobe(t, MAX_SITES, regexp).map((s) => {
        const offset = elf.vaddrToFileOffset(s.value);
        if (offset === undefined) {
          throw new ProbeTargetError(`${t.binary}: '${s.name}' is in no loaded segment`);
        }
        return { kind: "uprobe", binary: t.binary, offset };
      });
    }
    case "tracepoint":
      return expandTracepoints(t, MAX_SITES, regexp).map((tp) => ({ kind: "tracepoint", ...tp }));
    case "usdt":
      return expandUsdt(t, MAX_SITES, regexp).map((n) => {
        if (n.semaphore) {
          throw new ProbeTargetError(
            `USDT probe ${n.provider}:${n.name} has a semaphore: count it with funccount -p`,
          );
        }
        return { kind: "uprobe", binary: t.binary, offset: n.fileOffset };
      });
  }
}

// --- BPF side ---------------------------------------------------------------

function buildMaps(o: Options) {
  return {
    counts: defineMap({
      name: "counts",
      type: "hash",
      keySize: KEY.size,
      valueSize: 8,
      maxEntries: HASH_SIZE,
    }),
    stacks: defineStackMap({ name: "stack_traces", storageSize: o.stackSize }),
    errors: defineStackErrorMap(),
  };
}

type Maps = ReturnType<typeof buildMaps>;

function countProgram(p: Probe, o: Options, maps: Maps): Probe {
  if (o.pid !== undefined) p.filterCurrentTgid(o.pid);
  if (o.cpu !== undefined) p.call("get_smp_processor_id").returnIf(r0, "!=", o.cpu);
  const key = p.stack(KEY.size);
  p.zeroStack(key, Math.ceil(KEY.size / 8) * 8);
  // The process is kept even without -P: user frames are named in its address space.
  p.call("get_current_pid_tgid").rsh(r0, 32).store("u32", r10, key + KEY.pid, r0);
  if (o.perPid) p.stackPtr(r1, key + KEY.comm).mov(r2, COMM_LEN).call("get_current_comm");
  if (o.kernelStacks) stackId(p, r8, maps.stacks, { user: false, errors: maps.errors });
  else p.mov(r8, -1);
  if (o.userStacks) stackId(p, r9, maps.stacks, { user: true, errors: maps.errors });
  else p.mov(r9, -1);
  p.store("u32", r10, key + KEY.kernelStack, r8).store("u32", r10, key + KEY.userStack, r9);
  const zero = p.stack(8);
  p.lookupOrInit(maps.counts, key, zero);
  p.if(r0, "!=", 0, () => p.mov(r1, 1).atomicAdd("u64", r0, 0, r1));
  return p.ret(0);
}

function buildPrograms(o: Options, maps: Maps) {
  return o.sites.map((s, i) => {
    const name = `scount_${i}`;
    const pid = o.pid === undefined ? {} : { pid: o.pid };
    const p = s.kind === "uprobe"
      ? uprobe(s.binary, s.offset, { name, ...pid })
      : s.kind === "tracepoint"
      ? tracepoint(s.category, s.event, { name })
      : kprobe(s.func, { name });
    return countProgram(p, o, maps).build();
  });
}

// --- user side --------------------------------------------------------------

function readCounts(session: Session, maps: Maps) {
  return session.maps.get(maps.counts)!.entries().map(([k, v]) => {
    const key = new DataView(k.buffer);
    const pid = key.getUint32(KEY.pid, true);
    return {
      pid,
      shownId: pid,
      comm: decodeCString(k.subarray(KEY.comm, KEY.comm + COMM_LEN)),
      userStackId: key.getInt32(KEY.userStack, true),
      kernelStackId: key.getInt32(KEY.kernelStack, true),
      value: Number(new DataView(v.buffer).getBigUint64(0, true)),
    };
  });
}

/** Stacks that differ only by process become one without -P (the key holds it for naming). */
function merge(stacks: SymbolizedStack[], o: Options): SymbolizedStack[] {
  if (o.perPid) return stacks;
  const byFrames = new Map<string, SymbolizedStack>();
  for (const s of stacks) {
    const id = JSON.stringify([s.kernel, s.user]);
    const seen = byFrames.get(id);
    if (seen) seen.value += s.value;
    else byFrames.set(id, { ...s });
  }
  return [...byFrames.values()].sort((a, b) => a.value - b.value);
}

function frames(list: string[] | "missed" | undefined, missed: string): string[] {
  return list === "missed" ? [missed] : list ?? [];
}

/** bcc stackcount's report: frames, "comm [PID]" with -P, the count; or folded lines. */
function report(all: SymbolizedStack[], o: Options): string {
  const stacks = merge(all, o);
  const lines: string[] = [];
  for (const s of stacks) {
    const kernel = frames(s.kernel, "[Missed Kernel Stack]");
    const user = frames(s.user, "[Missed User Stack]");
    const delimiter = o.report.delimiter && kernel.length > 0 && user.length > 0;
    if (o.report.folded) {
      const line = [
        ...(o.perPid ? [s.comm] : []),
        ...user.toReversed(),
        ...(delimiter ? ["-"] : []),
        ...kernel.toReversed(),
      ].map(foldedFrame).join(";");
      lines.push(`${line} ${s.value}`);
      continue;
    }
    for (const f of kernel) lines.push(`  ${escapeText(f)}`);
    if (delimiter) lines.push("    --");
    for (const f of user) lines.push(`  ${escapeText(f)}`);
    if (o.perPid) lines.push(`    ${escapeText(s.comm)} [${s.pid}]`);
    lines.push(`    ${s.value}`, "");
  }
  const body = lines.length ? lines.join("\n") + "\n" : "";
  // Folded lines feed flame graphs: nothing else on stdout then.
  return o.report.folded ? body : "\n" + body + "Detaching...\n";
}

const shared = stackFlags(16384);

export const tool = stackTool({
  name: "stackcount",
  summary: "Count events and their stack traces.",
  examples: [
    ["stackcount c:malloc", "count stacks for malloc() in libc"],
    ["stackcount -P -U 'c:str*'", "user stacks of str*(), per process"],
    ["stackcount -p 185 c:malloc", "only count stacks for PID 185"],
    ["stackcount t:sched:sched_switch", "count stacks for sched_switch"],
    ["stackcount -r 'c:^mem(cpy|set)$'", "the same, with a regular expression"],
    ["stackcount -f -P -D 10 c:write", "10 s, folded, for flame graphs"],
    ["stackcount -c 1 t:sched:sched_wakeup", "only count stacks on CPU 1"],
    ["stackcount -p 185 u:node:gc__start", "stacks of a USDT probe"],
  ],
  flags: {
    pid: option("PID", "trace this PID only", pidValue, { short: "p" }),
    cpu: option("CPU", "trace this CPU only", integer(0, 4095, "CPU"), { short: "c" }),
    duration: option("SECS", "total duration of trace, seconds", integer(1, 99_999_999), {
      short: "D",
    }),
    regexp: flag('regular expressions (default: "*" wildcards)', "r"),
    perpid: flag("display stacks separately for each process", "P"),
    userStacksOnly: shared.userStacksOnly,
    kernelStacksOnly: shared.kernelStacksOnly,
    delimited: shared.delimited,
    folded: shared.folded,
    stackStorageSize: shared.stackStorageSize,
  },
  positionals: {
    pattern: positional("pattern", "search expression for events", (text) => text),
  },
  needsArguments: true,
  variants: [
    ["c:malloc"],
    ["-P", "-U", "-p", "1", "c:malloc"],
    ["-K", "-c", "0", "t:sched:sched_switch"],
  ],
  options: (v): Options => {
    if (v.pattern === undefined) throw new UsageError("needs a pattern: what to count stacks of");
    if (v.userStacksOnly && v.kernelStacksOnly) {
      throw new UsageError("-U and -K cannot be used together");
    }
    const user = !v.kernelStacksOnly, kernel = !v.userStacksOnly;
    return {
      pattern: v.pattern,
      sites: expand(v.pattern, v.regexp, v.pid),
      perPid: v.perpid,
      userStacks: user,
      kernelStacks: kernel,
      stackSize: v.stackStorageSize,
      duration: v.duration,
      report: {
        user,
        kernel,
        delimiter: v.delimited && user && kernel,
        annotate: false,
        folded: v.folded,
      },
      ...(v.pid === undefined ? {} : { pid: v.pid }),
      ...(v.cpu === undefined ? {} : { cpu: v.cpu }),
    };
  },
}, {
  unit: "count",
  maps: buildMaps,
  build: buildPrograms,
  banner: (o) => `Tracing ${o.sites.length} functions for "${o.pattern}"... Hit Ctrl-C to end.\n`,
  pidOffset: KEY.pid,
  read: readCounts,
  text: report,
  json: (stacks, o) =>
    merge(stacks, o).map((s) => ({
      ...(o.perPid ? { pid: s.pid, comm: s.comm } : {}),
      ...(s.kernel === undefined ? {} : { kernel: s.kernel === "missed" ? null : s.kernel }),
      ...(s.user === undefined ? {} : { user: s.user === "missed" ? null : s.user }),
      count: s.value,
    })),
});

if (import.meta.main) await tool.main();
