/**
 * The one implementation behind xfsslower, ext4slower, btrfsslower and
 * zfsslower: options, programs (lib/fsslower/programs.ts), and the event
 * loop printing each slow operation. Flags follow bcc's xfsslower
 * (positional min_ms, -j CSV, -p PID) plus libbpf-tools' -d DURATION.
 *
 * @module
 */
// --dump code is imported on demand: the tools start faster without it.
import { parseToolArgs, pidArg, positiveInt } from "../cli/args.ts";
import { streamEvents } from "../cli/event_loop.ts";
import { writeOut } from "../cli/output.ts";
import { runTool } from "../cli/run.ts";
import { loadAndAttach } from "../cli/session.ts";
import { StopSignal } from "../cli/stop.ts";
import { formatHelp, UsageError } from "../cli/usage.ts";
import { requireBpfPrivileges } from "../kernel/privileges.ts";
import { eventBufferKind } from "../kernel/ringbuf.ts";
import { requireVmlinuxBtf } from "../kernel/features.ts";
import { FILESYSTEMS, type FsName, requireFs } from "./filesystems.ts";
import { CSV_HEADER, formatCsv, formatJson, formatText, textHeader } from "./format.ts";
import { buildFsSlowerPrograms, fsEvent, fsEvents } from "./programs.ts";

function help(fs: FsName) {
  const tool = `${fs}slower`;
  return {
    name: tool,
    summary: `Trace common ${fs} file operations slower than a threshold.`,
    usage: `${tool} [-h] [-j] [-p PID] [-d DURATION] [min_ms]`,
    examples: [
      [tool, `trace operations slower than 10 ms (default)`],
      [`${tool} 1`, "trace operations slower than 1 ms"],
      [`${tool} -j 1`, "... 1 ms, parsable output (csv)"],
      [`${tool} 0`, "trace all operations (warning: verbose)"],
      [`${tool} -p 185`, "trace PID 185 only"],
      [`${tool} -d 10`, "trace for 10 seconds only"],
    ] as [string, string][],
    flags: [
      { flags: "-j, --csv", help: "just print fields: comma-separated values" },
      { flags: "-p, --pid PID", help: "trace this PID only" },
      { flags: "-d, --duration SECS", help: "total duration of trace in seconds" },
    ],
  };
}

/** What the operator asked for. */
interface Options {
  minMs: number;
  pid?: number;
  csv: boolean;
  durationS?: number;
}

function parseOptions(argv: string[]) {
  const { values, positionals } = parseToolArgs(argv, {
    csv: { type: "boolean", short: "j" },
    pid: { type: "string", short: "p" },
    duration: { type: "string", short: "d" },
  });
  if (positionals.length > 1) throw new UsageError(`unrecognized argument: '${positionals[1]}'`);
  const min = positionals[0] ?? "10";
  if (!/^\d+$/.test(min) || !Number.isSafeInteger(Number(min))) {
    throw new UsageError(`invalid min_ms: '${min}' (expected a non-negative integer)`);
  }
  const opts: Options = {
    minMs: Number(min),
    pid: values.pid === undefined ? undefined : pidArg(values.pid),
    csv: !!values.csv,
    durationS: values.duration === undefined ? undefined : positiveInt(values.duration, "duration"),
  };
  if (opts.csv && values.json) throw new UsageError("-j and --json cannot be used together");
  return { values, opts };
}

/** Runs the `${fs}slower` tool with these arguments, and exits. */
export async function fsSlowerMain(fsName: FsName, argv: string[] = Deno.args): Promise<never> {
  const fs = FILESYSTEMS[fsName];
  return await runTool(`${fsName}slower`, async () => {
    const { values, opts } = parseOptions(argv);
    if (values.help) return writeOut(formatHelp(help(fsName)));
    if (!values.dump) {
      requireBpfPrivileges();
      requireFs(fs);
      requireVmlinuxBtf();
    }
    const channel = fsEvents(values.dump ? "ringbuf" : eventBufferKind());
    const programs = buildFsSlowerPrograms(
      { fs, minNs: BigInt(opts.minMs) * 1_000_000n, pid: opts.pid, selfPid: Deno.pid },
      channel,
    );
    if (values.dump) return writeOut((await import("../cli/dump.ts")).dumpPrograms(programs));

    const session = loadAndAttach(programs, { verbose: values.verbose });
    if (values.verbose) {
      console.error(`${fsName}slower: tracing raw_syscalls:sys_enter/sys_exit (no kprobes needed)`);
    }
    const stop = new StopSignal();
    if (opts.csv) writeOut(CSV_HEADER);
    else if (!values.json) writeOut(textHeader(fs.name, opts.minMs, opts.durationS));
    try {
      await streamEvents(
        {
          maps: session.maps,
          channel,
          stop,
          durationMs: opts.durationS === undefined ? undefined : opts.durationS * 1000,
        },
        (data) => {
          const e = fsEvent.decode(data);
          if (opts.csv) return formatCsv(e);
          return values.json ? formatJson(e, new Date()) : formatText(e, new Date());
        },
      );
    } finally {
      stop.dispose();
    }
  });
}
