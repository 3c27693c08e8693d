/**
 * The one declaration behind xfsslower, ext4slower, btrfsslower and
 * zfsslower, made per file system: options, programs
 * (lib/fsslower/programs.ts), and how each slow operation prints. Flags
 * follow bcc's xfsslower (positional min_ms, -j CSV, -p PID) plus
 * libbpf-tools' -d DURATION. With no such file system mounted, the tool says
 * so once on stderr and traces anyway.
 *
 * @module
 */
import { durationFlag, eventTool } from "../cli/drivers/events.ts";
import { flag, integer, option, pidValue, positional } from "../cli/flags.ts";
import type { Tool } from "../cli/tool.ts";
import { requireVmlinuxBtf } from "../kernel/features.ts";
import { FILESYSTEMS, type FsName, warnUnlessMounted } from "./filesystems.ts";
import { CSV_HEADER, formatCsv, formatText, jsonFields, textHeader } from "./format.ts";
import { buildFsSlowerPrograms, fsEvent, PROGRAM_PREFIX } from "./programs.ts";

/** What the operator asked for. */
interface Options {
  csv: boolean;
  pid?: number;
  duration?: number;
  minMs: number;
}

/** The `${fs}slower` tool. */
export function fsSlowerTool(fsName: FsName): Tool<Options> {
  const fs = FILESYSTEMS[fsName];
  const tool = `${fsName}slower`;
  return eventTool({
    name: tool,
    summary: `Trace common ${fsName} file operations slower than a threshold.`,
    examples: [
      [tool, `trace operations slower than 10 ms (default)`],
      [`${tool} 1`, "trace operations slower than 1 ms"],
      [`${tool} -j 1`, "... 1 ms, parsable output (csv)"],
      [`${tool} 0`, "trace all operations (warning: verbose)"],
      [`${tool} -p 185`, "trace PID 185 only"],
      [`${tool} -d 10`, "trace for 10 seconds only"],
    ],
    flags: {
      csv: flag("just print fields: comma-separated values", "j"),
      pid: option("PID", "trace this PID only", pidValue, { short: "p" }),
      duration: durationFlag,
    },
    positionals: {
      minMs: positional(
        "min_ms",
        "minimum duration in ms (default 10; 0: all)",
        integer(0, Number.MAX_SAFE_INTEGER, "min_ms"),
      ),
    },
    variants: [["0"], ["-p", "1"]],
    options: (v): Options => ({ ...v, minMs: v.minMs ?? 10 }),
  }, {
    recordSize: fsEvent.size,
    ringBytes: 1 << 20,
    channelName: `${PROGRAM_PREFIX}events`,
    build: (o, channel) =>
      buildFsSlowerPrograms(
        { fs, minNs: BigInt(o.minMs) * 1_000_000n, pid: o.pid, selfPid: Deno.pid },
        channel,
      ),
    prepare: () => {
      requireVmlinuxBtf();
      warnUnlessMounted(fs);
    },
    started: (_session, _o, _ctx, verbose) => {
      if (verbose) {
        console.error(`${tool}: tracing raw_syscalls:sys_enter/sys_exit (no kprobes needed)`);
      }
    },
    header: (o) => o.csv ? CSV_HEADER : textHeader(fs.title, o.minMs, o.duration),
    text: (data, o) =>
      o.csv ? formatCsv(fsEvent.decode(data)) : formatText(fsEvent.decode(data), new Date()),
    json: (data) => jsonFields(fsEvent.decode(data)),
    durationSeconds: (o) => o.duration,
    textFormat: (o) => o.csv ? "-j" : undefined,
  });
}
