#!/usr/bin/env -S deno run -A
/**
 * profile: a CPU profiler. Samples what every CPU is running at a timed
 * interval (49 Hz by default) and counts the samples by process, user stack
 * and kernel stack, in the kernel; only the unique stacks and their counts
 * come to user space, at the end. Folded output (-f) feeds flame graphs:
 *
 *     # deno run -A tools/profile.ts -af -F 49 30 | deno run tools/flamegraph.ts > out.svg
 *
 * Events: a software cpu-clock perf event per CPU (PERF_COUNT_SW_CPU_CLOCK,
 * sampling at -F Hz or every -c nanoseconds); stacks from bpf_get_stackid
 * into a stack trace map (frame-pointer walks: build with
 * -fno-omit-frame-pointer for full user stacks). Output and flags follow
 * bcc's profile.
 *
 *     # deno run -A tools/profile.ts 5
 *     Sampling at 49 Hertz of all threads by user + kernel stack for 5 secs.
 *
 *         clear_page_erms
 *         ...
 *         do_syscall_64
 *         entry_SYSCALL_64_after_hwframe
 *         __GI___libc_write
 *         main
 *         -                dd (4120)
 *             12
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses. --dump code is imported on demand.
import { parseToolArgs, positiveInt } from "../lib/cli/args.ts";
import { writeOut } from "../lib/cli/output.ts";
import { runTool } from "../lib/cli/run.ts";
import { loadAndAttach, onlineCpus, type Session } from "../lib/cli/session.ts";
import { lostStacksWarning, pidsIn, readStackErrors, StackTraces } from "../lib/cli/stack_maps.ts";
import {
  formatStackReport,
  type StackCount,
  stackReportJson,
  type StackReportOptions,
  StackSymbols,
  symbolizeStacks,
  waitWhileSampling,
} from "../lib/cli/stack_report.ts";
import { StopSignal } from "../lib/cli/stop.ts";
import { formatHelp, UsageError } from "../lib/cli/usage.ts";
import { kernelLayouts } from "../lib/dsl/layouts.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import { Probe } from "../lib/dsl/program.ts";
import { r0, r1, r10, r2, r7, r8, r9 } from "../lib/dsl/registers.ts";
import { defineStackErrorMap, defineStackMap, stackId } from "../lib/dsl/stacks.ts";
import { decodeCString, stringifyJson } from "../lib/format/escape.ts";

const HELP = {
  name: "profile",
  summary: "Profile CPU stack traces at a timed interval.",
  usage: "profile [-h] [-p PID | -L TID] [-U | -K] [-F FREQUENCY | -c COUNT] [-d] [-a] " +
    "[-I] [-f] [--hash-storage-size N] [--stack-storage-size N] [-C CPU] [duration]",
  examples: [
    ["profile", "profile stack traces at 49 Hertz until Ctrl-C"],
    ["profile -F 99", "profile stack traces at 99 Hertz"],
    ["profile -c 1000000", "profile stack traces every 1 in a million events"],
    ["profile 5", "profile at 49 Hertz for 5 seconds only"],
    ["profile -f 5", "output in folded format for flame graphs"],
    ["profile -p 185", "only profile process with PID 185"],
    ["profile -L 185", "only profile thread with TID 185"],
    ["profile -U", "only show user space stacks (no kernel)"],
    ["profile -K", "only show kernel space stacks (no user)"],
    ["profile -af -F 49 30", "30 s, folded, kernel frames marked: flame graphs"],
  ] as [string, string][],
  flags: [
    { flags: "-p, --pid PID", help: "profile these processes only (comma separated PIDs)" },
    { flags: "-L, --tid TID", help: "profile these threads only (comma separated TIDs)" },
    { flags: "-U, --user-stacks-only", help: "show stacks from user space only" },
    { flags: "-K, --kernel-stacks-only", help: "show stacks from kernel space only" },
    { flags: "-F, --frequency HZ", help: "sample frequency, Hertz (default 49)" },
    { flags: "-c, --count N", help: "sample period, number of events (cpu-clock: ns)" },
    { flags: "-d, --delimited", help: "insert delimiter between kernel/user stacks" },
    { flags: "-a, --annotations", help: "add _[k] annotations to kernel frames" },
    { flags: "-I, --include-idle", help: "include CPU idle stacks" },
    { flags: "-f, --folded", help: "output folded format, one line per stack" },
    { flags: "--hash-storage-size N", help: "stack counts that can be stored (40960)" },
    { flags: "--stack-storage-size N", help: "unique stack traces that can be stored (16384)" },
    { flags: "-C, --cpu CPU", help: "cpu number to run profile on" },
    { flags: "duration", help: "duration of trace, in seconds" },
  ],
};

/** What the operator asked for. */
interface Options {
  pids?: number[];
  tids?: number[];
  userStacks: boolean;
  kernelStacks: boolean;
  frequency?: number;
  period?: number;
  includeIdle: boolean;
  cpu?: number;
  hashSize: number;
  stackSize: number;
  duration?: number;
}

/** The most PIDs/TIDs -p and -L take (each is one compare in the program). */
const MAX_IDS = 16;

function idList(text: string, what: string): number[] {
  const ids = text.split(",").map((s) => positiveInt(s.trim(), what));
  if (ids.length > MAX_IDS) throw new UsageError(`at most ${MAX_IDS} ${what}s`);
  return ids;
}

function parseOptions(argv: string[]) {
  const { values, positionals } = parseToolArgs(argv, {
    pid: { type: "string", short: "p" },
    tid: { type: "string", short: "L" },
    "user-stacks-only": { type: "boolean", short: "U" },
    "kernel-stacks-only": { type: "boolean", short: "K" },
    frequency: { type: "string", short: "F" },
    count: { type: "string", short: "c" },
    delimited: { type: "boolean", short: "d" },
    annotations: { type: "boolean", short: "a" },
    "include-idle": { type: "boolean", short: "I" },
    folded: { type: "boolean", short: "f" },
    "hash-storage-size": { type: "string" },
    "stack-storage-size": { type: "string" },
    cpu: { type: "string", short: "C" },
  });
  if (values.pid !== undefined && values.tid !== undefined) {
    throw new UsageError("-p and -L cannot be used together");
  }
  if (values["user-stacks-only"] && values["kernel-stacks-only"]) {
    throw new UsageError("-U and -K cannot be used together");
  }
  if (values.frequency !== undefined && values.count !== undefined) {
    throw new UsageError("-F and -c cannot be used together");
  }
  if (positionals.length > 1) {
    throw new UsageError(`unrecognized positional argument: '${positionals[1]}'`);
  }
  let cpu: number | undefined;
  if (values.cpu !== undefined) {
    if (!/^\d+$/.test(values.cpu)) throw new UsageError(`invalid CPU: '${values.cpu}'`);
    cpu = Number(values.cpu);
  }
  const opts: Options = {
    pids: values.pid === undefined ? undefined : idList(values.pid, "PID"),
    tids: values.tid === undefined ? undefined : idList(values.tid, "TID"),
    userStacks: !values["kernel-stacks-only"],
    kernelStacks: !values["user-stacks-only"],
    frequency: values.frequency === undefined
      ? (values.count === undefined ? 49 : undefined)
      : positiveInt(values.frequency, "frequency"),
    period: values.count === undefined ? undefined : positiveInt(values.count, "count"),
    includeIdle: !!values["include-idle"],
    cpu,
    hashSize: positiveInt(values["hash-storage-size"] ?? "40960", "hash storage size"),
    stackSize: positiveInt(values["stack-storage-size"] ?? "16384", "stack storage size"),
    duration: positionals[0] === undefined ? undefined : positiveInt(positionals[0], "duration"),
  };
  const report: StackReportOptions = {
    user: opts.userStacks,
    kernel: opts.kernelStacks,
    delimiter: !!values.delimited && opts.userStacks && opts.kernelStacks,
    annotate: !!values.annotations,
    folded: !!values.folded,
  };
  return { values, opts, report };
}

// --- BPF side ---------------------------------------------------------------

const COMM_LEN = 16;
/** counts key: u32 tgid, s32 user stack id, s32 kernel stack id, char comm[16]. */
const KEY = { pid: 0, userStack: 4, kernelStack: 8, comm: 12, size: 28 } as const;
/** struct bpf_perf_event_data: pt_regs (168 bytes), sample_period, addr. */
const PERF_EVENT_DATA_SIZE = 184;

function buildMaps(o: Options) {
  return {
    counts: defineMap({
      name: "counts",
      type: "hash",
      keySize: KEY.size,
      valueSize: 8,
      maxEntries: o.hashSize,
    }),
    stacks: defineStackMap({ name: "stack_traces", storageSize: o.stackSize }),
    errors: defineStackErrorMap(),
  };
}

type Maps = ReturnType<typeof buildMaps>;

/** Returns unless `reg` equals one of `ids`. */
function allowOnly(p: Probe, reg: typeof r1, ids: number[]): void {
  const keep = p.label();
  for (const id of ids) p.jumpIf(reg, "==", id, keep);
  p.ret(0);
  p.bind(keep);
}

function buildProgram(o: Options, maps: Maps) {
  const p = new Probe(
    "profile",
    "perf_event",
    {
      kind: "perf_event",
      frequency: o.frequency,
      period: o.period,
      cpus: o.cpu === undefined ? undefined : [o.cpu],
    },
    { kind: "none" },
    kernelLayouts,
    PERF_EVENT_DATA_SIZE,
  );
  p.call("get_current_pid_tgid").mov(r7, r0);
  // The idle task is TID 0 on every CPU.
  if (!o.includeIdle) p.mov32(r1, r7).returnIf(r1, "==", 0);
  if (o.pids) {
    p.mov(r1, r7).rsh(r1, 32);
    allowOnly(p, r1, o.pids);
  }
  if (o.tids) {
    p.mov32(r1, r7);
    allowOnly(p, r1, o.tids);
  }

  const key = p.stack(KEY.size);
  p.zeroStack(key, Math.ceil(KEY.size / 8) * 8);
  p.mov(r1, r7).rsh(r1, 32).store("u32", r10, key + KEY.pid, r1);
  p.stackPtr(r1, key + KEY.comm).mov(r2, COMM_LEN).call("get_current_comm");
  if (o.kernelStacks) stackId(p, r8, maps.stacks, { user: false, errors: maps.errors });
  else p.mov(r8, -1);
  if (o.userStacks) stackId(p, r9, maps.stacks, { user: true, errors: maps.errors });
  else p.mov(r9, -1);
  p.store("u32", r10, key + KEY.kernelStack, r8).store("u32", r10, key + KEY.userStack, r9);

  const zero = p.stack(8);
  p.lookupOrInit(maps.counts, key, zero);
  p.if(r0, "!=", 0, () => p.mov(r1, 1).atomicAdd("u64", r0, 0, r1));
  return p.ret(0).build();
}

// --- user side --------------------------------------------------------------

function header(o: Options): string {
  const rate = o.frequency !== undefined ? `${o.frequency} Hertz` : `every ${o.period} events`;
  const who = o.pids
    ? `PID ${o.pids.join(",")}`
    : o.tids
    ? `TID ${o.tids.join(",")}`
    : "all threads";
  const stacks = o.userStacks && o.kernelStacks
    ? "user + kernel"
    : o.userStacks
    ? "user"
    : "kernel";
  const cpu = o.cpu === undefined ? "" : ` on CPU#${o.cpu}`;
  const end = o.duration === undefined ? "... Hit Ctrl-C to end." : ` for ${o.duration} secs.`;
  return `Sampling at ${rate} of ${who} by ${stacks} stack${cpu}${end}\n`;
}

function readCounts(session: Session, maps: Maps): StackCount[] {
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

await runTool("profile", async () => {
  const { values, opts, report } = parseOptions(Deno.args);
  if (values.help) return writeOut(formatHelp(HELP));
  const maps = buildMaps(opts);
  const programs = [buildProgram(opts, maps)];
  if (values.dump) return writeOut((await import("../lib/cli/dump.ts")).dumpPrograms(programs));
  if (opts.cpu !== undefined && !onlineCpus().includes(opts.cpu)) {
    throw new UsageError(`CPU ${opts.cpu} is not online`);
  }

  const session = loadAndAttach(programs, { verbose: values.verbose });
  const stop = new StopSignal();
  const symbols = new StackSymbols();
  try {
    if (!report.folded && !values.json) writeOut(header(opts));
    // Meanwhile, snapshot the address space of each process sampled, in case it exits.
    await waitWhileSampling(stop, opts.duration, () => {
      symbols.remember(pidsIn(session.maps.get(maps.counts)!, KEY.pid));
    });
  } finally {
    stop.dispose();
  }
  // Stop sampling before symbolizing, so the report's own work is not profiled.
  for (const link of session.links) link.close();

  const counts = readCounts(session, maps);
  const traces = new StackTraces(session.maps.get(maps.stacks)!);
  const stacks = symbolizeStacks(counts, traces, symbols, report);
  const lost = readStackErrors(session.maps.get(maps.errors)!);
  const hashFull = counts.length >= opts.hashSize;
  if (values.json) {
    writeOut(
      stringifyJson({
        unit: "samples",
        stacks: stackReportJson(stacks),
        lostStacks: lost.collisions + lost.full,
        hashFull,
      }) + "\n",
    );
  } else {
    writeOut((report.folded ? "" : "\n") + formatStackReport(stacks, report));
  }
  const warning = lostStacksWarning(lost);
  if (warning) console.error(warning);
  if (hashFull) {
    console.error("WARNING: hash table full. Consider increasing --hash-storage-size.");
  }
});
