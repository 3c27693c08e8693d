/**
 * The one declaration behind xfsdist, ext4dist and btrfsdist (libbpf-tools
 * fsdist -t FS): per operation (read, write, open, fsync), a log2 histogram
 * of its latency, from the same programs as the fsslower tools
 * (raw_syscalls plus the task's file table and the superblock magic; no
 * kprobes), counting instead of sending. Latency is the whole syscall's.
 *
 * @module
 */
import {
  histogramTool,
  type IntervalOptions,
  intervalPositionals,
  timestampFlag,
} from "../cli/drivers/interval.ts";
import { flag, option, pidValue } from "../cli/flags.ts";
import { drainHistograms } from "../cli/hist_maps.ts";
import type { Tool } from "../cli/tool.ts";
import { defineHistMap } from "../dsl/hist.ts";
import { formatLog2Hist as formatTable } from "../format/log2_hist.ts";
import { requireVmlinuxBtf } from "../kernel/features.ts";
import { FILESYSTEMS, type FsName, warnUnlessMounted } from "./filesystems.ts";
import { buildFsDistPrograms, FsOp } from "./programs.ts";

/** What the operator asked for. */
interface Options extends IntervalOptions {
  milliseconds: boolean;
  pid?: number;
}

/** libbpf-tools' MAX_SLOTS for fsdist. */
const SLOTS = 32;
/** u32 op -> log2 latency counters. */
const hists = defineHistMap({ name: "fsd_hists", slots: SLOTS, keySize: 4, maxEntries: 8 });
/** libbpf-tools' file_op_names, in its order. */
const OP_NAMES: [number, string][] = [
  [FsOp.read, "read"],
  [FsOp.write, "write"],
  [FsOp.open, "open"],
  [FsOp.fsync, "fsync"],
];

/** The `${fs}dist` tool. */
export function fsDistTool(fsName: FsName): Tool<Options> {
  const fs = FILESYSTEMS[fsName];
  const tool = `${fsName}dist`;
  return histogramTool({
    name: tool,
    summary: `Summarize ${fsName} operation latency as histograms.`,
    examples: [
      [tool, `trace ${fsName} operation latency until Ctrl-C`],
      [`${tool} -m 5`, "5s summaries, milliseconds"],
      [`${tool} -T 1 10`, "1s summaries with timestamps, 10 times"],
      [`${tool} -p 181`, "trace PID 181 only"],
    ],
    flags: {
      timestamp: timestampFlag,
      milliseconds: flag("millisecond histograms", "m"),
      pid: option("PID", "trace this PID only", pidValue, { short: "p" }),
    },
    positionals: intervalPositionals,
    variants: [["-m"], ["-p", "1"]],
    options: (v): Options => v,
  }, {
    banner: () => `Tracing ${fsName} operation latency... Hit Ctrl-C to end.`,
    build: (o) =>
      buildFsDistPrograms({ fs, minNs: 0n, pid: o.pid, selfPid: Deno.pid }, hists, o.milliseconds),
    prepare: () => {
      requireVmlinuxBtf();
      warnUnlessMounted(fs);
    },
    read: (session, o) => {
      const byOp = new Map(
        drainHistograms(session.maps.get(hists)!, hists).map((h) => [
          new DataView(h.key.buffer, h.key.byteOffset).getUint32(0, true),
          h.slots,
        ]),
      );
      return {
        unit: o.milliseconds ? "msecs" : "usecs",
        histograms: OP_NAMES.flatMap(([op, name]) => {
          const slots = byOp.get(op);
          if (!slots?.some((n) => n > 0)) return [];
          return [{ heading: `operation = '${name}'`, labels: { operation: name }, slots }];
        }),
      };
    },
    // libbpf-tools: "operation = 'read'", the table, then an empty line
    text: (set) =>
      set.histograms.map((h) => `${h.heading}\n${formatTable(h.slots, set.unit)}\n`).join(""),
  });
}
