#!/usr/bin/env -S deno run
/**
 * flamegraph: folded stacks in, an interactive SVG flame graph out, so no
 * Perl is needed. Reads what profile -f and offcputime -f print (or any
 * stackcollapse output) from stdin or files, writes the SVG to stdout.
 * Frame widths are proportional to counts; hover shows a frame and its
 * share, click zooms, Ctrl-F searches. Options follow flamegraph.pl.
 *
 *     # deno run -A tools/profile.ts -af -F 49 30 | deno run tools/flamegraph.ts > cpu.svg
 *     # deno run -A tools/offcputime.ts -f 10 | deno run tools/flamegraph.ts \
 *           --colors io --countname us --title "Off-CPU Time Flame Graph" > offcpu.svg
 *
 * Needs no permissions for stdin/stdout (--allow-read for file arguments).
 */
import { parseToolArgs, positiveInt } from "../lib/cli/args.ts";
import { BrokenPipe, writeOut } from "../lib/cli/output.ts";
import { formatHelp, UsageError } from "../lib/cli/usage.ts";
import { mergeFolded, parseFolded } from "../lib/format/folded.ts";
import { type Palette, PALETTES, renderFlameGraph } from "../lib/format/flamegraph.ts";

const HELP = {
  name: "flamegraph",
  summary: "Render folded stacks as an interactive SVG flame graph.",
  usage: "flamegraph [-h] [--title TEXT] [--subtitle TEXT] [--width PX] [--height PX] " +
    "[--fontsize PX] [--minwidth PX] [--colors PALETTE] [--countname NAME] " +
    "[--nametype TEXT] [--reverse] [--inverted] [--reverse-stacks] [FILE ...]",
  examples: [
    ["profile -f 10 | flamegraph > cpu.svg", "a CPU flame graph"],
    ["flamegraph --colors io < off.folded > off.svg", "off-CPU time, blue"],
    ["flamegraph --reverse < in.folded > icicle.svg", "an icicle graph"],
    ["flamegraph --title 'My app' out.folded > out.svg", "from a file, titled"],
  ] as [string, string][],
  flags: [
    { flags: "--title TEXT", help: 'title (default "Flame Graph")' },
    { flags: "--subtitle TEXT", help: "second line under the title" },
    { flags: "--width PX", help: "image width (default 1200)" },
    { flags: "--height PX", help: "frame height (default 16)" },
    { flags: "--fontsize PX", help: "font size (default 12)" },
    { flags: "--minwidth PX", help: "leave out frames narrower than this (default 0.1)" },
    { flags: "--colors PALETTE", help: "hot (default), io, mem, js, or a hue: red, blue..." },
    { flags: "--countname NAME", help: 'what the counts are (default "samples")' },
    { flags: "--nametype TEXT", help: 'label of the hover line (default "Function:")' },
    { flags: "--reverse, --inverted", help: "icicle graph: root on top, stacks grow down" },
    { flags: "--reverse-stacks", help: "reverse each stack first (leaf functions at the root)" },
    { flags: "FILE", help: "folded stack files (default: stdin)" },
  ],
};

function number(text: string | undefined, what: string, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || !(n > 0)) {
    throw new UsageError(`invalid ${what}: '${text}' (expected a positive number)`);
  }
  return n;
}

/**
 * Whether env variable `name` may be read without a prompt: this tool runs
 * with no permissions at all (stdin to stdout), where reading it would throw.
 */
function envAllowed(name: string): boolean {
  return Deno.permissions.querySync({ name: "env", variable: name }).state === "granted";
}

async function main(): Promise<void> {
  const { values, positionals } = parseToolArgs(Deno.args, {
    title: { type: "string" },
    subtitle: { type: "string" },
    width: { type: "string" },
    height: { type: "string" },
    fontsize: { type: "string" },
    minwidth: { type: "string" },
    colors: { type: "string" },
    color: { type: "string" },
    countname: { type: "string" },
    nametype: { type: "string" },
    reverse: { type: "boolean" },
    inverted: { type: "boolean" },
    "reverse-stacks": { type: "boolean" },
  });
  if (values.help) return writeOut(formatHelp(HELP));
  if (values.dump) {
    // No BPF programs here: an empty list for `BPFTK_DUMP=json` consumers.
    const json = envAllowed("BPFTK_DUMP") && Deno.env.get("BPFTK_DUMP") === "json";
    return writeOut(json ? "[]\n" : "");
  }
  const colors = values.colors ?? values.color ?? "hot";
  if (!(PALETTES as readonly string[]).includes(colors)) {
    throw new UsageError(`unknown palette '${colors}' (one of: ${PALETTES.join(", ")})`);
  }
  const width = positiveInt(values.width ?? "1200", "width");
  const opts = {
    title: values.title,
    subtitle: values.subtitle,
    width,
    frameHeight: number(values.height, "height", 16),
    fontSize: number(values.fontsize, "font size", 12),
    minWidth: number(values.minwidth, "min width", 0.1),
    colors: colors as Palette,
    countName: values.countname,
    nameType: values.nametype,
    inverted: !!(values.reverse || values.inverted),
    reverseStacks: !!values["reverse-stacks"],
  };

  const texts = positionals.length
    ? positionals.map((path) => Deno.readTextFileSync(path))
    : [await new Response(Deno.stdin.readable).text()];
  const stacks = mergeFolded(texts.flatMap(parseFolded));
  if (stacks.length === 0) throw new Error("no stack counts in the input");
  writeOut(renderFlameGraph(stacks, opts));
}

// Like the BPF tools' runTool (one-line errors, exit 2 for usage), without
// the kernel cleanup and environment reads that would need permissions.
let status = 0;
try {
  await main();
} catch (e) {
  if (!(e instanceof BrokenPipe)) {
    const message = (e instanceof Error ? e.message : String(e)).split("\n")[0];
    const usage = e instanceof UsageError;
    console.error(`flamegraph: ${message}${usage ? " (see 'flamegraph --help')" : ""}`);
    status = usage ? 2 : 1;
  }
}
Deno.exit(status);
