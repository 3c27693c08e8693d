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
import { integer, option, restPositionals } from "../lib/cli/flags.ts";
import { writeOut } from "../lib/cli/output.ts";
import { plainTool } from "../lib/cli/tool.ts";
import { UsageError } from "../lib/cli/usage.ts";
import { mergeFolded, parseFolded } from "../lib/format/folded.ts";
import { type Palette, PALETTES, renderFlameGraph } from "../lib/format/flamegraph.ts";

/** A positive number of pixels (fractions allowed). */
function pixels(text: string, name: string): number {
  const n = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || !(n > 0)) {
    throw new UsageError(`invalid ${name} '${text}': expected a positive number`);
  }
  return n;
}

function palette(text: string): Palette {
  if (!(PALETTES as readonly string[]).includes(text)) {
    throw new UsageError(`unknown palette '${text}' (one of: ${PALETTES.join(", ")})`);
  }
  return text as Palette;
}

/** A file to read folded stacks from: errors name the path and what went wrong. */
function readFolded(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound
      ? "no such file"
      : e instanceof Deno.errors.IsADirectory
      ? "is a directory"
      : e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable
      ? "permission denied (run with --allow-read for file arguments)"
      : (e as Error).message.replace(/\s*\(os error \d+\).*$/, "");
    throw new UsageError(`${path}: cannot read: ${why}`);
  }
}

/** Any text. */
const text = (t: string) => t;

export const tool = plainTool({
  name: "flamegraph",
  summary: "Render folded stacks as an interactive SVG flame graph.",
  examples: [
    ["profile -f 10 | flamegraph > cpu.svg", "a CPU flame graph"],
    ["flamegraph --colors io < off.folded > off.svg", "off-CPU time in blue"],
    ["flamegraph --inverted < in.folded > ice.svg", "an icicle graph"],
    ["flamegraph --reverse < in.folded > rev.svg", "leaves at the root"],
    ["flamegraph --title App in.folded > out.svg", "from a file, titled"],
  ],
  flags: {
    title: option("TEXT", 'title (default "Flame Graph")', text),
    subtitle: option("TEXT", "second line under the title", text),
    width: option("PX", "image width (default 1200)", integer(1, 1_000_000, "width")),
    height: option("PX", "frame height (default 16)", pixels),
    fontsize: option("PX", "font size (default 12)", pixels),
    minwidth: option("PX", "leave out frames narrower than this (default 0.1)", pixels),
    colors: option("PALETTE", "hot (default), io, mem, js, or a hue: red, blue...", palette),
    countname: option("NAME", 'what the counts are (default "samples")', text),
    nametype: option("TEXT", 'label of the hover line (default "Function:")', text),
    reverse: { help: "stack-reversed flame graph (leaf functions at the root)" },
    inverted: { help: "icicle graph: root on top, stacks grow down" },
  },
  positionals: {
    files: restPositionals("FILE", "folded stack files (default: stdin)", readFolded),
  },
}, async (v) => {
  const texts = v.files ?? [await new Response(Deno.stdin.readable).text()];
  const stacks = mergeFolded(texts.flatMap(parseFolded));
  if (stacks.length === 0) throw new Error("no stack counts in the input");
  writeOut(renderFlameGraph(stacks, {
    title: v.title,
    subtitle: v.subtitle,
    width: v.width ?? 1200,
    frameHeight: v.height ?? 16,
    fontSize: v.fontsize ?? 12,
    minWidth: v.minwidth ?? 0.1,
    colors: v.colors ?? "hot",
    countName: v.countname,
    nameType: v.nametype,
    inverted: v.inverted,
    reverseStacks: v.reverse,
  }));
});

if (import.meta.main) await tool.main();
