/**
 * The driver of the stack tools (profile, offcputime): count by stack in the
 * kernel for a duration (or until Ctrl-C), meanwhile remember the address
 * space of each process seen (it may exit before the end), then detach and
 * print bcc's multi-line report, folded lines (-f) for flame graphs, or one
 * JSON object with "time", "unit" and "stacks" (a stack the kernel lost is
 * null; a side not shown is absent).
 *
 * `--pprof FILE` also writes the counts as a gzipped pprof profile
 * (lib/export/pprof.ts) for `go tool pprof` and pprof stores.
 *
 * @module
 */
import type { BuiltProgram } from "../../dsl/builder.ts";
import type { MapDef } from "../../dsl/maps.ts";
import { stringifyJson } from "../../format/escape.ts";
import { type PprofValues, writePprof } from "../../export/pprof.ts";
import {
  type DefaultedFlag,
  flag,
  type FlagSpec,
  type FlagTable,
  integer,
  nonEmpty,
  option,
  optionWithDefault,
  type PositionalTable,
} from "../flags.ts";
import { writeOut } from "../output.ts";
import type { Session } from "../session.ts";
import { startPrograms } from "../program_cache.ts";
import { lostStacksWarning, pidsIn, readStackErrors, StackTraces } from "../stack_maps.ts";
import {
  formatStackReport,
  type StackCount,
  stackReportJson,
  type StackReportOptions,
  StackSymbols,
  type SymbolizedStack,
  symbolizeStacks,
  waitWhileSampling,
} from "../stack_report.ts";
import { StopSignal } from "../stop.ts";
import { defineTool, type Tool, type ToolInfo } from "../tool.ts";
import { UsageError } from "../usage.ts";

/** Options every stack tool has. */
export interface StackOptions {
  /** Seconds to count; undefined: until Ctrl-C. */
  duration?: number;
  /** How the report prints (-U/-K, -d, -a, -f). */
  report: StackReportOptions;
  /** --pprof FILE: also write a gzipped pprof profile there. */
  pprof?: string;
}

/** The maps every stack tool has: counts by stack, the stack traces, lost-stack counters. */
export interface StackMaps {
  /** Counts (or time) by process and stack ids. */
  counts: MapDef;
  /** The stack trace map the ids point into. */
  stacks: MapDef;
  /** Counters of stacks the kernel could not store. */
  errors: MapDef;
}

/** How a stack tool runs, beside its declaration. */
export interface StackSpec<O extends StackOptions, M extends StackMaps> {
  /** What the values count ("samples", "us"). */
  unit: string;
  /** The maps for these options (their sizes come from flags). */
  maps: (o: O) => M;
  /** The programs for these options. */
  build: (o: O, maps: M) => BuiltProgram[];
  /** Checks against the machine before loading (a CPU online); not run for --dump. */
  check?: (o: O) => void;
  /** The line printed while counting (not with -f or --json). */
  banner: (o: O) => string;
  /**
   * Offset of the process ID in a counts key, to remember the processes seen
   * (for their user stacks); undefined for tools that show kernel stacks only.
   */
  pidOffset?: number;
  /** The counts map read as stack counts. */
  read: (session: Session, maps: M) => StackCount[];
  /** The report's text, when the tool's layout is not bcc's offcputime one (wakeuptime). */
  text?: (stacks: SymbolizedStack[], o: O) => string;
  /** The report's JSON "stacks", when `text` groups stacks its own way (offwaketime's pairs). */
  json?: (stacks: SymbolizedStack[], o: O) => Record<string, unknown>[];
  /** Nanoseconds between samples, for pprof's cpu/nanoseconds (tools whose unit is "samples"). */
  samplePeriodNs?: (o: O) => number | undefined;
  /** Warnings after the report (on stderr), and the same facts as JSON fields. */
  after?: (counts: StackCount[], o: O) => { warnings: string[]; json: Record<string, unknown> };
}

/** Declares a stack tool. */
export function stackTool<
  F extends FlagTable,
  P extends PositionalTable,
  O extends StackOptions,
  M extends StackMaps,
>(info: ToolInfo<F, P, O>, spec: StackSpec<O, M>): Tool<O> {
  return defineTool(withPprofFlag(info), {
    jsonHelp: "print the report as one JSON object",
    programs: (o) => spec.build(o, spec.maps(o)),
    async run(o, common) {
      spec.check?.(o);
      const maps = spec.maps(o);
      using session = await startPrograms({
        tool: info.name,
        options: o,
        extra: maps,
        build: () => spec.build(o, maps),
        verbose: common.verbose,
      });
      const symbols = new StackSymbols();
      let startMs = Date.now();
      {
        using stop = new StopSignal();
        startMs = Date.now();
        if (!o.report.folded && !common.json) writeOut(spec.banner(o));
        // Meanwhile, snapshot the address space of each process seen, in case it exits.
        await waitWhileSampling(stop, o.duration, () => {
          if (spec.pidOffset === undefined) return;
          symbols.remember(pidsIn(session.maps.get(maps.counts)!, spec.pidOffset));
        });
      }
      // Stop counting before symbolizing, so the report's own work is not counted.
      session.detach();
      const durationMs = Date.now() - startMs;

      const counts = spec.read(session, maps);
      const traces = new StackTraces(session.maps.get(maps.stacks)!);
      const stacks = symbolizeStacks(counts, traces, symbols, o.report);
      const lost = readStackErrors(session.maps.get(maps.errors)!);
      const extra = spec.after?.(counts, o) ?? { warnings: [], json: {} };
      if (common.json) {
        writeOut(
          stringifyJson({
            time: new Date().toISOString(),
            unit: spec.unit,
            stacks: spec.json?.(stacks, o) ?? stackReportJson(stacks),
            lostStacks: lost.collisions + lost.full,
            ...extra.json,
          }) + "\n",
        );
      } else {
        writeOut(
          spec.text?.(stacks, o) ??
            (o.report.folded ? "" : "\n") + formatStackReport(stacks, o.report),
        );
      }
      if (o.pprof) {
        // Event counts (stackcount) export as samples/count, as profile's samples without a period.
        const values: PprofValues = spec.unit === "samples" || spec.unit === "count"
          ? { kind: "cpu", periodNs: spec.samplePeriodNs?.(o) }
          : { kind: "offcpu", unitNs: spec.unit === "us" ? 1000 : 1 };
        writePprof(o.pprof, {
          counts,
          traces,
          symbols,
          report: o.report,
          values,
          startMs,
          durationMs,
        });
      }
      const warning = lostStacksWarning(lost);
      if (warning) console.error(warning);
      for (const w of extra.warnings) console.error(w);
    },
  });
}

/** The declaration with --pprof FILE added, its value kept in the options. */
function withPprofFlag<F extends FlagTable, P extends PositionalTable, O>(
  info: ToolInfo<F, P, O>,
): ToolInfo<F, P, O> {
  type V = Parameters<NonNullable<ToolInfo<F, P, O>["options"]>>[0];
  return {
    ...info,
    flags: {
      ...info.flags,
      pprof: option("FILE", "also write a gzipped pprof profile to FILE", nonEmpty),
    },
    options: (v: V) => {
      const o = info.options ? info.options(v) : v as unknown as O;
      const file = (v as Record<string, unknown>).pprof as string | undefined;
      return file === undefined ? o : { ...o, pprof: file };
    },
  };
}

// --- the flags every stack tool shares -----------------------------------------

/**
 * The most stack traces a stack map may hold: the kernel preallocates each
 * (127 frames, about 1 KiB), so this caps it at 256 MiB.
 */
export const MAX_STACK_STORAGE = 262_144;

/** -U, -K, -d, -f and --stack-storage-size, as bcc's profile and offcputime have them. */
export function stackFlags(defaultStorage: number): {
  userStacksOnly: FlagSpec<boolean>;
  kernelStacksOnly: FlagSpec<boolean>;
  delimited: FlagSpec<boolean>;
  folded: FlagSpec<boolean>;
  stackStorageSize: DefaultedFlag<number>;
} {
  return {
    userStacksOnly: flag("show stacks from user space only", "U", "user-stacks-only"),
    kernelStacksOnly: flag("show stacks from kernel space only", "K", "kernel-stacks-only"),
    delimited: flag("insert delimiter between kernel/user stacks", "d"),
    folded: flag("output folded format, one line per stack", "f"),
    stackStorageSize: optionWithDefault(
      "N",
      `unique stack traces that can be stored (${defaultStorage})`,
      integer(1, MAX_STACK_STORAGE, "stack storage size"),
      defaultStorage,
      { long: "stack-storage-size" },
    ),
  };
}

/** The report options from the shared stack flags (-U and -K exclude each other). */
export function stackReportOptions(
  v: { userStacksOnly: boolean; kernelStacksOnly: boolean; delimited: boolean; folded: boolean },
  more: Partial<StackReportOptions> = {},
): StackReportOptions {
  if (v.userStacksOnly && v.kernelStacksOnly) {
    throw new UsageError("-U and -K cannot be used together");
  }
  const user = !v.kernelStacksOnly, kernel = !v.userStacksOnly;
  return {
    user,
    kernel,
    delimiter: v.delimited && user && kernel,
    annotate: false,
    folded: v.folded,
    ...more,
  };
}

/** "user + kernel", "user" or "kernel": the stacks shown, for the banner. */
export function stacksShown(report: StackReportOptions): string {
  return report.user && report.kernel ? "user + kernel" : report.user ? "user" : "kernel";
}

/** The banner's ending: how long the tool counts. */
export function untilWhen(duration: number | undefined): string {
  return duration === undefined ? "... Hit Ctrl-C to end." : ` for ${duration} secs.`;
}
