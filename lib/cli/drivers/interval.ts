/**
 * The driver of the interval tools (runqlat, biolatency, bitesize, workq,
 * tcpsynbl, readahead, vfsstat): load and attach, print the banner, then once
 * per `interval` seconds (`count` times; without an interval, once on
 * Ctrl-C) read the maps and print text or one JSON object with "time".
 * Ctrl-C and SIGTERM print what was counted so far (as bcc does) and exit.
 *
 * A histogram tool only says how to read its maps into a {@link HistogramSet}
 * and how to label each histogram; the text (libbpf-tools' log2 tables) and
 * the JSON come from here.
 *
 * `--prometheus [ADDR]` (every histogram tool, and interval tools that say
 * how their report exports): instead of printing, serve GET /metrics on ADDR
 * (default 127.0.0.1:9435) until Ctrl-C. Each scrape drains the maps with the
 * tool's own `read` and adds the counts into running totals
 * (lib/export/tool_collector.ts), so counts only go up. The one line saying
 * where it serves goes to stdout, where the banner would.
 *
 * @module
 */
import type { BuiltProgram } from "../../dsl/builder.ts";
import type { MapDef } from "../../dsl/maps.ts";
import { stringifyJson } from "../../format/escape.ts";
import { formatLog2Hist } from "../../format/log2_hist.ts";
import { formatTimeOfDay } from "../../format/time.ts";
import type { BpfMap } from "../../kernel/map.ts";
import {
  DEFAULT_LISTEN,
  type ListenAddress,
  metricsUrl,
  parseListen,
  serveMetrics,
} from "../../export/prometheus_server.ts";
import { type ExportedReport, ToolCollector } from "../../export/tool_collector.ts";
import type { MetricFamily } from "../../export/metrics.ts";
import {
  count,
  flag,
  type FlagSpec,
  type FlagTable,
  option,
  positional,
  type PositionalTable,
  seconds,
} from "../flags.ts";
import { writeOut } from "../output.ts";
import type { Session } from "../session.ts";
import { startPrograms } from "../program_cache.ts";
import { intervals, StopSignal } from "../stop.ts";
import { defineTool, type Tool, type ToolInfo } from "../tool.ts";
import { UsageError } from "../usage.ts";

/** Options every interval tool has (from its positionals and -T). */
export interface IntervalOptions {
  /** Seconds between reports; undefined: one report on Ctrl-C. */
  interval?: number;
  /** Reports before exiting; undefined: until Ctrl-C. */
  count?: number;
  /** -T: a time-of-day line before each report. */
  timestamp?: boolean;
  /** --prometheus (or `bpftk exporter`): the metrics are served there; tools build a sum then. */
  prometheus?: ListenAddress;
}

/** What a histogram tool reads from its maps at each interval. */
export interface HistogramSet {
  /** The values' unit ("usecs", "msecs", "Kbytes"). */
  unit: string;
  /** One histogram, or one per key (process, disk, ...). */
  histograms: LabeledHistogram[];
}

/** One histogram: its counts by log2 slot, a heading for text, labels for JSON. */
export interface LabeledHistogram {
  /** Printed on the line before the table ("pid = 42 sleep"); none for a single histogram. */
  heading?: string;
  /** The same identity as JSON fields ({pid: 42, comm: "sleep"}). */
  labels?: Record<string, string | number>;
  /** Counts by slot: slot i holds values in [2^i, 2^(i+1)-1], slot 0 [0, 1]. */
  slots: number[];
  /**
   * The sum of the values counted, in base units (seconds, bytes), when the
   * maps keep one (built with a sum under --prometheus): the exported `_sum`.
   */
  sum?: number;
}

/** How an interval tool runs, beside its declaration. */
export interface IntervalSpec<O extends IntervalOptions, R, C> {
  /** First line in text mode ("Tracing run queue latency... Hit Ctrl-C to end."). */
  banner?: (o: O) => string;
  /** Last line in text mode, after the last report ("Exiting trace of FUNC"). */
  footer?: (o: O) => string;
  /** The programs for these options. */
  build: (o: O) => BuiltProgram[];
  /** What the tool needs before loading (symbols, disk names); computed once, not for --dump. */
  prepare?: (o: O) => C;
  /** Fills maps (filters, configuration) before anything attaches. */
  initMaps?: (o: O, maps: Map<MapDef, BpfMap>) => void;
  /** Once attached: notes on stderr, watchers (kept in ctx); what it returns is disposed at exit. */
  started?: (session: Session, o: O, json: boolean, ctx: C) => Disposable | void;
  /** Reads (and clears, for histograms) the maps at the end of an interval. */
  read: (session: Session, o: O, ctx: C) => R;
  /** Text for one report, after the driver's blank line and -T time line. */
  text: (report: R, o: O, ctx: C) => string;
  /** JSON fields for one report (the driver adds "time"). */
  json: (report: R, o: O, ctx: C) => Record<string, unknown>;
  /** Interval when none is given (vfsstat prints every second). */
  defaultInterval?: number;
  /** A partial interval cut short by Ctrl-C is not printed (per-second rates). */
  skipPartial?: boolean;
  /** No blank line and time line before each report: the tool's text has its own. */
  ownHeading?: boolean;
  /**
   * What one report (read and cleared now) adds to the exported metrics;
   * tools with it get --prometheus. Histogram tools have it by default.
   */
  metrics?: (report: R, o: O, ctx: C, session: Session) => ExportedReport;
}

/** An exporting tool, loaded and attached: `collect()` drains and returns the totals. */
export interface ExportHandle extends Disposable {
  readonly name: string;
  collect(): MetricFamily[];
}

/** A tool that can export (bpftk.ts exporter serves several from one process). */
export interface Exportable {
  /** Loads and attaches the tool as `argv` asks, for exporting (served at `addr`). */
  startExport(argv: string[], addr: ListenAddress): Promise<ExportHandle>;
}

/** True for a tool that can export. */
export function isExportable(tool: object): tool is Exportable {
  return "startExport" in tool;
}

/** --prometheus [ADDR]: the value is optional (see {@link defaultPrometheusAddress}). */
export const prometheusFlag = option(
  "ADDR",
  `serve /metrics (default ADDR ${DEFAULT_LISTEN})`,
  (text, flag) => parseListen(text, flag),
  { long: "prometheus" },
);

/** `--prometheus` not followed by an address (HOST:PORT, :PORT) takes the default one. */
export function defaultPrometheusAddress(argv: string[]): string[] {
  return argv.map((a, i) =>
    a === "--prometheus" && !/:\d+$/.test(argv[i + 1] ?? "") ? `--prometheus=${DEFAULT_LISTEN}` : a
  );
}

/** The positionals of most interval tools: `[interval] [count]`. */
export const intervalPositionals = {
  interval: positional("interval", "output interval, in seconds", seconds),
  count: positional("count", "number of outputs", count),
};

/** -T, --timestamp: the time of day before each report. */
export const timestampFlag: FlagSpec<boolean> = flag("include timestamp on output", "T");

/** Declares an interval tool. */
export function intervalTool<
  F extends FlagTable,
  P extends PositionalTable,
  O extends IntervalOptions,
  R,
  C = undefined,
>(info: ToolInfo<F, P, O>, spec: IntervalSpec<O, R, C>): Tool<O> {
  const exporting = spec.metrics !== undefined;
  // Through the program cache (lib/cli/program_cache.ts): our verifier is
  // imported only when a program needs it.
  const start = async (o: O, verbose: boolean) => {
    const ctx = spec.prepare?.(o) as C;
    const session = await startPrograms({
      tool: info.name,
      options: o,
      build: () => spec.build(o),
      verbose,
      initMaps: spec.initMaps && ((maps) => spec.initMaps!(o, maps)),
    });
    return { ctx, session };
  };
  const exportHandle = async (o: O, verbose: boolean): Promise<ExportHandle> => {
    const { ctx, session } = await start(o, verbose);
    try {
      const started = spec.started?.(session, o, false, ctx) ?? undefined;
      const collector = new ToolCollector(info.name, info.summary);
      return {
        name: info.name,
        collect() {
          collector.add(spec.metrics!(spec.read(session, o, ctx), o, ctx, session));
          return collector.families();
        },
        [Symbol.dispose]() {
          try {
            started?.[Symbol.dispose]();
          } finally {
            session[Symbol.dispose]();
          }
        },
      };
    } catch (e) {
      session[Symbol.dispose]();
      throw e;
    }
  };
  const base = defineTool(exporting ? withPrometheusFlag(info) : info, {
    // "per interval" only where there are intervals (readahead, blkthrot report once)
    jsonHelp: info.positionals && "interval" in info.positionals
      ? "print one JSON object per interval instead of text"
      : "print the report as one JSON object instead of text",
    programs: spec.build,
    async run(o, common) {
      if (o.prometheus) {
        if (common.json) throw new UsageError("--prometheus and --json cannot be used together");
        const stop = new StopSignal();
        using _stop = stop;
        using handle = await exportHandle(o, common.verbose);
        await using server = serveMetrics(o.prometheus, () => handle.collect());
        writeOut(
          `${info.name}: serving Prometheus metrics on ${
            metricsUrl(server.addr)
          } ... Hit Ctrl-C to end.\n`,
        );
        await stop.promise;
        return;
      }
      const { ctx, session } = await start(o, common.verbose);
      using _session = session;
      const stop = new StopSignal();
      using _stop = stop;
      if (!common.json && spec.banner) writeOut(spec.banner(o) + "\n");
      using _started = spec.started?.(session, o, common.json, ctx) ?? undefined;
      const interval = o.interval ?? spec.defaultInterval;
      for await (const _ of intervals(stop, interval, o.count)) {
        if (spec.skipPartial && stop.stopped) break;
        const report = spec.read(session, o, ctx);
        if (common.json) {
          const fields = spec.json(report, o, ctx);
          writeOut(stringifyJson({ time: new Date().toISOString(), ...fields }) + "\n");
          continue;
        }
        const heading = spec.ownHeading ? "" : "\n" + (o.timestamp ? timeLine() : "");
        writeOut(heading + spec.text(report, o, ctx));
      }
      if (!common.json && spec.footer) writeOut(spec.footer(o) + "\n");
    },
  });
  if (!exporting) return base;
  const fix = defaultPrometheusAddress;
  const tool: Tool<O> & Exportable = {
    ...base,
    parse: (argv) => base.parse(fix(argv)),
    programs: (argv) => base.programs(fix(argv)),
    main: (argv = Deno.args, name) => base.main(fix(argv), name),
    startExport: (argv, addr) => {
      const { options, common } = base.parse(fix(argv));
      return exportHandle({ ...options, prometheus: addr }, common.verbose);
    },
  };
  return tool;
}

/** The declaration with --prometheus added, its value kept in the options, and verified. */
function withPrometheusFlag<F extends FlagTable, P extends PositionalTable, O>(
  info: ToolInfo<F, P, O>,
): ToolInfo<F, P, O> {
  type V = Parameters<NonNullable<ToolInfo<F, P, O>["options"]>>[0];
  return {
    ...info,
    flags: { ...info.flags, prometheus: prometheusFlag },
    options: (v: V) => {
      const o = info.options ? info.options(v) : v as unknown as O;
      const addr = (v as Record<string, unknown>).prometheus as ListenAddress | undefined;
      return addr ? { ...o, prometheus: addr } : o;
    },
    // A tool that needs arguments (funclatency FUNC) exports with its first variant's.
    variants: [
      ...(info.variants ?? []),
      ["--prometheus", ...(info.needsArguments ? info.variants?.[0] ?? [] : [])],
    ],
  };
}

/** Declares a histogram tool: an interval tool whose reports are log2 histograms. */
export function histogramTool<
  F extends FlagTable,
  P extends PositionalTable,
  O extends IntervalOptions,
  C = undefined,
>(
  info: ToolInfo<F, P, O>,
  spec: Omit<IntervalSpec<O, HistogramSet, C>, "text" | "json"> & {
    text?: IntervalSpec<O, HistogramSet, C>["text"];
    json?: IntervalSpec<O, HistogramSet, C>["json"];
  },
): Tool<O> {
  return intervalTool(info, {
    text: (set) => histogramText(set),
    json: (set) => histogramJson(set),
    metrics: (set) => ({ histograms: { unit: set.unit, histograms: set.histograms } }),
    ...spec,
  });
}

/** libbpf-tools' text: each histogram's heading, then its log2 table. */
export function histogramText(set: HistogramSet): string {
  return set.histograms.map((h) =>
    (h.heading === undefined ? "" : `\n${h.heading}\n`) + formatLog2Hist(h.slots, set.unit)
  ).join("");
}

/** The JSON of every histogram tool: `{unit, histograms: [{...labels, buckets}]}`. */
export function histogramJson(set: HistogramSet): Record<string, unknown> {
  return {
    unit: set.unit,
    histograms: set.histograms.map((h) => ({ ...h.labels, buckets: log2Buckets(h.slots) })),
  };
}

/** A histogram bucket in JSON: inclusive bounds and the count. */
export interface JsonBucket {
  /** Lowest value in the bucket. */
  low: number;
  /** Highest value in the bucket. */
  high: number;
  /** Values counted in it. */
  count: number;
}

/**
 * JSON buckets of every histogram tool: from the lowest bucket up to the last
 * non-empty one (the rows libbpf-tools prints), inclusive bounds.
 */
export function jsonBuckets(
  slots: number[],
  bounds: (slot: number) => { low: number; high: number },
  first = 0,
): JsonBucket[] {
  const last = slots.findLastIndex((c) => c > 0);
  const out: JsonBucket[] = [];
  for (let i = first; i <= last; i++) out.push({ ...bounds(i), count: slots[i] });
  return out;
}

/** Log2 slot bounds: slot 0 is [0, 1], slot i is [2^i, 2^(i+1)-1]. */
export function log2Bounds(i: number): { low: number; high: number } {
  return { low: i === 0 ? 0 : 2 ** i, high: 2 ** (i + 1) - 1 };
}

/** JSON buckets of a log2 histogram. */
export function log2Buckets(slots: number[]): JsonBucket[] {
  return jsonBuckets(slots, log2Bounds);
}

/** The -T line: the time of day, as libbpf-tools prints it before a report. */
export function timeLine(): string {
  return formatTimeOfDay(new Date()).padEnd(8) + "\n";
}
