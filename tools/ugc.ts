#!/usr/bin/env -S deno run -A
/**
 * ugc: garbage collections of a high-level language runtime, one line per
 * collection with its duration and what it did.
 *
 * Events: the runtime's USDT probes, a start and a done probe paired per
 * thread: python:gc__start (the generation) and python:gc__done (objects
 * collected) in CPython built with --with-dtrace (Debian's python3 is);
 * the kernel raises their semaphores while attached (uprobe ref_ctr_offset,
 * as bpftrace does, so both can trace the same probes at once). Other
 * languages of bcc's ugc (java, node, ruby) are not implemented: their
 * runtimes (with USDT probes built in) could not be tested here, and the
 * tool says so in one line.
 * Output and flags follow bcc ugc: START seconds since tracing began,
 * TIME (us) or (ms) with -m, the description.
 *
 *     # deno run -A tools/ugc.ts -l python 4242
 *     Tracing garbage collections in python process 4242... Ctrl-C to quit.
 *     START    TIME (us) DESCRIPTION
 *     1.215    512.88   gen 2 GC collected 1000 objects
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import { eventTool } from "../lib/cli/drivers/events.ts";
import { flag, integer, nonEmpty, option, PID_MAX, positional } from "../lib/cli/flags.ts";
import { UsageError } from "../lib/cli/usage.ts";
import { type EventsDef, output } from "../lib/dsl/events.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import { ProbeTargetError, usdt } from "../lib/dsl/pt_regs.ts";
import { r0, r1, r10, r7, r8 } from "../lib/dsl/registers.ts";
import { defineSchema } from "../lib/dsl/schema.ts";
import { monotonicNs } from "../lib/kernel/libc.ts";
import { ElfFile } from "../lib/symbols/elf.ts";

const LANGUAGES = ["java", "node", "python", "ruby"] as const;

/** What the operator asked for. */
interface Options {
  pid: number;
  language: (typeof LANGUAGES)[number];
  milliseconds: boolean;
  minimum?: number;
  filter?: string;
  /** The file with the probes: the executable, or a libpython it maps. */
  binary: string;
}

/** The file of process `pid` that has python:gc__start: its executable, or a mapped libpython. */
function pythonBinary(pid: number): string {
  const candidates = [`/proc/${pid}/exe`];
  try {
    for (const line of Deno.readTextFileSync(`/proc/${pid}/maps`).split("\n")) {
      const path = line.trim().split(/\s+/).slice(5).join(" ");
      if (/\/libpython[^/]*\.so/.test(path)) candidates.push(`/proc/${pid}/root${path}`);
    }
  } catch { /* checked below */ }
  for (const c of candidates) {
    try {
      if (ElfFile.open(c).usdt("python", "gc__start").length) return c;
    } catch { /* not readable or not ELF */ }
  }
  return candidates[0];
}

// --- BPF side ---------------------------------------------------------------

const gcEvent = defineSchema("gc_event", {
  start_ns: "u64",
  elapsed_ns: "u64",
  field1: "u64",
  field2: "u64",
});

/** A collection in progress, by thread: its start record. */
const starts = defineMap({
  name: "starts",
  type: "hash",
  keySize: 4,
  valueSize: gcEvent.size,
  maxEntries: 1024,
});

function buildPrograms(o: Options, ch: EventsDef) {
  if (o.language !== "python") {
    throw new ProbeTargetError(
      `-l ${o.language}: not implemented (its GC probes could not be tested here); -l python is`,
    );
  }
  const begin = usdt(o.binary, "python", "gc__start", {
    pid: o.pid,
    name: "ugc_start",
    kernelSemaphore: true,
  });
  const end = usdt(o.binary, "python", "gc__done", {
    pid: o.pid,
    name: "ugc_done",
    kernelSemaphore: true,
  });
  const programs = [
    ...begin.map((p) => {
      const key = p.stack(4), rec = p.stack(gcEvent.size);
      p.filterCurrentTgid(o.pid);
      p.zeroStack(rec, gcEvent.size);
      p.usdtArg(r7, 0).store("u64", r10, rec + gcEvent.offset("field1"), r7);
      p.ktime(r0).store("u64", r10, rec + gcEvent.offset("start_ns"), r0);
      p.call("get_current_pid_tgid").store("u32", r10, key, r0);
      p.update(starts, key, rec);
      return p.ret(0);
    }),
    ...end.map((p) => {
      const key = p.stack(4), done = p.label();
      p.filterCurrentTgid(o.pid);
      p.usdtArg(r8, 0);
      p.call("get_current_pid_tgid").store("u32", r10, key, r0);
      p.lookup(starts, key).returnIf(r0, "==", 0).mov(r7, r0);
      gcEvent.store(p, r7, "field2", r8);
      p.ktime(r0);
      gcEvent.load(p, r1, r7, "start_ns");
      p.sub(r0, r1);
      gcEvent.store(p, r7, "elapsed_ns", r0);
      if (o.minimum !== undefined) {
        const minNs = BigInt(o.minimum) * (o.milliseconds ? 1_000_000n : 1000n);
        p.mov64(r1, minNs).jumpIf(r0, "<", r1, done);
      }
      output(p, ch, r7, gcEvent.size);
      p.bind(done).delete(starts, key);
      return p.ret(0);
    }),
  ];
  return programs.map((p) => p.build());
}

// --- user side --------------------------------------------------------------

interface State {
  startNs: bigint;
}

function describe(e: ReturnType<typeof gcEvent.decode>): string {
  return `gen ${Number(BigInt.asIntN(32, e.field1))} GC collected ${
    Number(BigInt.asIntN(64, e.field2))
  } objects`;
}

export const tool = eventTool({
  name: "ugc",
  summary: "Summarize garbage collection events in high-level languages.",
  examples: [
    ["ugc -l python 185", "trace Python GCs in process 185"],
    ["ugc -l python -m 185", "the same, durations in milliseconds"],
    ["ugc -l python -M 1000 185", "only GCs of 1000 us or more"],
    ["ugc -l python -F 'gen 2' 185", "only descriptions containing 'gen 2'"],
  ],
  flags: {
    language: option("LANG", `language to trace (${LANGUAGES.join(", ")})`, (text) => {
      if (!(LANGUAGES as readonly string[]).includes(text)) {
        throw new UsageError(`invalid language '${text}': one of ${LANGUAGES.join(", ")}`);
      }
      return text as Options["language"];
    }, { short: "l" }),
    milliseconds: flag("report times in milliseconds (default is microseconds)", "m"),
    minimum: option("MIN", "display only GCs longer than this many ms/us", integer(0, 2 ** 40), {
      short: "M",
    }),
    filter: option("FILTER", "display only GCs whose description contains this text", nonEmpty, {
      short: "F",
    }),
  },
  positionals: {
    pid: positional("pid", "process id to attach to", (text, name) => {
      const pid = integer(1, PID_MAX, "pid")(text, name);
      try {
        Deno.statSync(`/proc/${pid}`);
      } catch {
        throw new UsageError(`no process with PID ${pid}`);
      }
      return pid;
    }),
  },
  needsArguments: true,
  variants: [],
  options: (v): Options => {
    if (v.pid === undefined) throw new UsageError("needs the PID of the process to trace");
    const language = v.language ?? "python";
    return {
      pid: v.pid,
      language,
      milliseconds: v.milliseconds,
      binary: language === "python" ? pythonBinary(v.pid) : `/proc/${v.pid}/exe`,
      ...(v.minimum === undefined ? {} : { minimum: v.minimum }),
      ...(v.filter === undefined ? {} : { filter: v.filter }),
    };
  },
}, {
  recordSize: gcEvent.size,
  build: buildPrograms,
  prepare: (): State => ({ startNs: monotonicNs() }),
  header: (o) =>
    `Tracing garbage collections in ${o.language} process ${o.pid}... Ctrl-C to quit.\n` +
    `${"START".padEnd(8)} ${(o.milliseconds ? "TIME (ms)" : "TIME (us)").padEnd(8)} ` +
    `${"DESCRIPTION".padEnd(40)}\n`,
  text: (data, o, s) => {
    const e = gcEvent.decode(data);
    const description = describe(e);
    if (o.filter !== undefined && !description.includes(o.filter)) return undefined;
    const start = Number(e.start_ns - s.startNs) / 1e9;
    const time = Number(e.elapsed_ns) / (o.milliseconds ? 1e6 : 1e3);
    return `${start.toFixed(3).padEnd(8)} ${time.toFixed(2).padEnd(8)} ${description.padEnd(40)}\n`;
  },
  json: (data, o, s) => {
    const e = gcEvent.decode(data);
    const description = describe(e);
    if (o.filter !== undefined && !description.includes(o.filter)) return undefined;
    return {
      start: Number(e.start_ns - s.startNs) / 1e9,
      us: Number(e.elapsed_ns) / 1e3,
      generation: Number(BigInt.asIntN(32, e.field1)),
      collected: Number(BigInt.asIntN(64, e.field2)),
      description,
    };
  },
});

if (import.meta.main) await tool.main();
