#!/usr/bin/env -S deno run -A
/**
 * exporter: serve the Prometheus metrics of several tools from one process,
 * on one address: `bpftk exporter runqlat biolatency vfsstat --listen ADDR`.
 * Each argument is a tool and, quoted with it, its flags
 * (`'biolatency -D'`); every tool that has --prometheus can be served. Each
 * scrape drains every tool's maps into its running totals (as
 * `TOOL --prometheus` does) and answers with all their families.
 *
 *     # deno run -A bpftk.ts exporter runqlat 'biolatency -D' vfsstat
 *     exporter: serving Prometheus metrics on http://127.0.0.1:9435/metrics ... Hit Ctrl-C to end.
 */
import { type Exportable, type ExportHandle, isExportable } from "../lib/cli/drivers/interval.ts";
import { nonEmpty, optionWithDefault, restPositionals } from "../lib/cli/flags.ts";
import { writeOut } from "../lib/cli/output.ts";
import { StopSignal } from "../lib/cli/stop.ts";
import { defineTool, type Tool } from "../lib/cli/tool.ts";
import { UsageError } from "../lib/cli/usage.ts";
import {
  DEFAULT_LISTEN,
  type ListenAddress,
  metricsUrl,
  parseListen,
  serveMetrics,
} from "../lib/export/prometheus_server.ts";

interface Options {
  listen: ListenAddress;
  tools: string[][];
}

/** "biolatency -D" -> ["biolatency", "-D"]. */
function toolLine(text: string, name: string): string[] {
  return nonEmpty(text.trim(), name).split(/\s+/);
}

async function exportable(name: string): Promise<Tool<unknown> & Exportable> {
  const { TOOLS } = await import("../bpftk.ts");
  if (!Object.hasOwn(TOOLS, name) || name === "exporter") {
    throw new UsageError(`exporter: unknown tool '${name}' (see 'bpftk --list')`);
  }
  const { tool } = await TOOLS[name]();
  if (!isExportable(tool)) throw new UsageError(`exporter: ${name} has no --prometheus`);
  return tool;
}

const listenFlag = optionWithDefault(
  "ADDR",
  `address to serve /metrics on (default ${DEFAULT_LISTEN})`,
  (text, flag): ListenAddress => parseListen(text, flag),
  parseListen(DEFAULT_LISTEN),
  { short: "l" },
);

export const tool = defineTool({
  name: "exporter",
  summary: "Serve several tools' Prometheus metrics from one process.",
  examples: [
    ["exporter runqlat biolatency vfsstat", "three tools on one port"],
    ["exporter 'biolatency -D' --listen :9435", "per disk, all interfaces"],
  ],
  flags: { listen: listenFlag },
  // the programs are the tools' own, verified under their names
  needsArguments: true,
  positionals: {
    tools: restPositionals("TOOL", "a tool, with its flags quoted with it", toolLine),
  },
  options: (v): Options => {
    if (!v.tools) throw new UsageError("exporter: name at least one tool");
    const names = v.tools.map((t) => t[0]);
    const twice = names.find((n, i) => names.indexOf(n) !== i);
    if (twice) throw new UsageError(`exporter: ${twice} named twice (its metrics would clash)`);
    return { listen: v.listen, tools: v.tools };
  },
}, {
  programs: () => [],
  async run(o, common) {
    if (common.json) throw new UsageError("exporter: no --json (it serves /metrics)");
    const tools = [];
    for (const [name, ...args] of o.tools) tools.push({ tool: await exportable(name), args });
    const stop = new StopSignal();
    using _stop = stop;
    const handles: ExportHandle[] = [];
    try {
      for (const { tool, args } of tools) {
        handles.push(
          await tool.startExport([...args, ...(common.verbose ? ["-v"] : [])], o.listen),
        );
      }
      await using server = serveMetrics(o.listen, () => handles.flatMap((h) => h.collect()));
      writeOut(
        `exporter: serving Prometheus metrics of ${handles.map((h) => h.name).join(", ")} on ${
          metricsUrl(server.addr)
        } ... Hit Ctrl-C to end.\n`,
      );
      await stop.promise;
    } finally {
      for (const h of handles.reverse()) h[Symbol.dispose]();
    }
  },
});

if (import.meta.main) await tool.main();
