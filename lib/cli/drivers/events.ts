/**
 * The driver of the event tools (execsnoop, opensnoop, the fs-slower tools,
 * tcplife, tcpaccept, bashreadline, mysqld_qslower): one record per event
 * through a ring buffer (a perf buffer on kernels before 5.8), printed as one
 * line of text, or one JSON object with "time"; lost events reported on
 * stderr; Ctrl-C, SIGTERM or the duration end it after draining what the
 * kernel already produced.
 *
 * @module
 */
import type { BuiltProgram } from "../../dsl/builder.ts";
import { DEFAULT_RING_BYTES, defineEvents, type EventsDef } from "../../dsl/events.ts";
import type { MapDef } from "../../dsl/maps.ts";
import { stringifyJson } from "../../format/escape.ts";
import { requireBpfPrivileges } from "../../kernel/privileges.ts";
import type { BpfMap } from "../../kernel/map.ts";
import { eventBufferKind } from "../../kernel/ringbuf.ts";
import { ringBytesFromEnv, streamEvents } from "../event_loop.ts";
import { type FlagTable, integer, option, type PositionalTable, type ValueFlag } from "../flags.ts";
import { writeOut } from "../output.ts";
import type { Session } from "../session.ts";
import { startPrograms } from "../program_cache.ts";
import { StopSignal } from "../stop.ts";
import { defineTool, type Tool, type ToolInfo } from "../tool.ts";
import { UsageError } from "../usage.ts";

/** How an event tool runs, beside its declaration. */
export interface EventSpec<O, C> {
  /** Bytes of the largest record. */
  recordSize: number;
  /** Ring buffer bytes (default 256 KiB). */
  ringBytes?: number;
  /** Records built in a per-CPU scratch area and sent at their real size. */
  scratch?: boolean;
  /** Prefix of the channel's map names (default "events"). */
  channelName?: string;
  /** The programs for these options, sending records to `channel`. */
  build: (o: O, channel: EventsDef) => BuiltProgram[];
  /** Checks against the machine and state kept while printing; not run for --dump. */
  prepare?: (o: O) => C;
  /** Fills maps (filters: the -c cgroup) before anything attaches. */
  initMaps?: (o: O, maps: Map<MapDef, BpfMap>) => void;
  /**
   * Once attached (a note on stderr under -v, the time origin of -t). What it
   * returns is disposed of when the stream ends (undo a change made to a traced process).
   */
  started?: (session: Session, o: O, ctx: C, verbose: boolean) => Disposable | void;
  /** A text format chosen by a flag (CSV): that flag, when set, as it is spelled; not with --json. */
  textFormat?: (o: O) => string | undefined;
  /** Text before the first record: the column header. */
  header?: (o: O) => string;
  /** One record as a line of text, or undefined when a user-space filter drops it. */
  text: (data: Uint8Array, o: O, ctx: C) => string | undefined;
  /** One record as JSON fields (the driver adds "time"), or undefined when filtered out. */
  json: (data: Uint8Array, o: O, ctx: C) => Record<string, unknown> | undefined;
  /** Stop after this many seconds (opensnoop -d). */
  durationSeconds?: (o: O) => number | undefined;
  /**
   * What to print once the stream has ended (Ctrl-C, SIGTERM, -d): a table
   * kept in `ctx` from the records (tcpconnect -c). `json` rows are printed
   * one object per line, each with "time".
   */
  summary?: (o: O, ctx: C) => { text: string; json: Record<string, unknown>[] } | undefined;
}

/** Declares an event tool. */
export function eventTool<F extends FlagTable, P extends PositionalTable, O, C = undefined>(
  info: ToolInfo<F, P, O>,
  spec: EventSpec<O, C>,
): Tool<O> {
  const channelOf = (kind: EventsDef["kind"]) =>
    defineEvents({
      kind,
      recordSize: spec.recordSize,
      ringBytes: ringBytesFromEnv(spec.ringBytes ?? DEFAULT_RING_BYTES),
      scratch: spec.scratch,
      name: spec.channelName,
    });
  return defineTool(info, {
    jsonHelp: "print one JSON object per event instead of text",
    programs: (o) => spec.build(o, channelOf("ringbuf")),
    async run(o, common) {
      const format = common.json ? spec.textFormat?.(o) : undefined;
      if (format) throw new UsageError(`${format} and --json cannot be used together`);
      requireBpfPrivileges(); // before probing the buffer kind, which needs the bpf syscall
      const ctx = spec.prepare?.(o) as C;
      const channel = channelOf(eventBufferKind());
      using session = await startPrograms({
        tool: info.name,
        options: o,
        extra: channel,
        build: () => spec.build(o, channel),
        verbose: common.verbose,
        initMaps: spec.initMaps && ((maps) => spec.initMaps!(o, maps)),
      });
      using _undo = spec.started?.(session, o, ctx, common.verbose) ?? undefined;
      using stop = new StopSignal();
      if (!common.json && spec.header) writeOut(spec.header(o));
      const seconds = spec.durationSeconds?.(o);
      await streamEvents(
        {
          maps: session.maps,
          channel,
          stop,
          durationMs: seconds === undefined ? undefined : seconds * 1000,
        },
        common.json
          ? (data) => {
            const fields = spec.json(data, o, ctx);
            if (fields === undefined) return undefined;
            return stringifyJson({ time: new Date().toISOString(), ...fields }) + "\n";
          }
          : (data) => spec.text(data, o, ctx),
      );
      const summary = spec.summary?.(o, ctx);
      if (summary && common.json) {
        const time = new Date().toISOString();
        writeOut(summary.json.map((row) => stringifyJson({ time, ...row }) + "\n").join(""));
      } else if (summary) writeOut(summary.text);
    },
  });
}

/** -d SECS: stop after this many seconds (the driver stops when `durationSeconds` says). */
export const durationFlag: ValueFlag<number> = option(
  "SECS",
  "total duration of trace in seconds",
  integer(1, 99_999_999, "duration"),
  { short: "d" },
);

/**
 * The tool with a flag that may be given without its value (bcc's
 * `nargs="?"`): `-s` alone, or followed by another flag, means `-s value`.
 */
export function withBareValue<O>(tool: Tool<O>, spellings: string[], value: string): Tool<O> {
  const fill = (argv: string[]) =>
    argv.flatMap((a, i) =>
      spellings.includes(a) && (argv[i + 1] === undefined || argv[i + 1].startsWith("-"))
        ? [a, value]
        : [a]
    );
  return {
    ...tool,
    parse: (argv) => tool.parse(fill(argv)),
    programs: (argv) => tool.programs(fill(argv)),
    main: (argv = Deno.args, name) => tool.main(fill(argv), name),
  };
}
