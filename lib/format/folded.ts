/**
 * Folded stacks, the flame graph interchange format (Brendan Gregg's
 * stackcollapse output, read by flamegraph.pl, speedscope, inferno, and
 * tools/flamegraph.ts): one line per unique stack, frames root first,
 * separated by ";", then a space and the count.
 *
 *     bash;main;execute_command;[unknown] 12
 *
 * @example
 * ```ts
 * import { formatFoldedLine, parseFolded } from "./folded.ts";
 * formatFoldedLine(["main", "spin"], 42); // "main;spin 42"
 * parseFolded("main;spin 42\n"); // [{ frames: ["main", "spin"], count: 42 }]
 * ```
 *
 * @module
 */
import { escapeText } from "./escape.ts";

/** One line of folded output. */
export interface FoldedStack {
  /** Frames, root first. */
  frames: string[];
  /** How many times the stack was seen (samples, or a summed value). */
  count: number;
}

/**
 * A frame name made safe for a folded line: control characters escaped (the
 * name may come from a traced process) and ";" (the separator) replaced by ":".
 */
export function foldedFrame(name: string): string {
  const text = escapeText(name);
  return text.includes(";") ? text.replaceAll(";", ":") : text;
}

/** "root;...;leaf count", frames already made safe with foldedFrame. */
export function formatFoldedLine(frames: string[], count: number): string {
  return `${frames.join(";")} ${count}`;
}

/**
 * Parses folded text as flamegraph.pl does: the count is what follows the
 * last space (it may be fractional); lines without one are skipped. Stacks
 * that appear on several lines are kept as they are (see mergeFolded).
 */
export function parseFolded(text: string): FoldedStack[] {
  const out: FoldedStack[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    const space = line.lastIndexOf(" ");
    if (space <= 0) continue;
    const countText = line.slice(space + 1);
    if (!/^\d+(\.\d+)?$/.test(countText)) continue;
    const stack = line.slice(0, space);
    out.push({ frames: stack === "" ? [] : stack.split(";"), count: Number(countText) });
  }
  return out;
}

/** Adds up the counts of identical stacks, keeping first-seen order. */
export function mergeFolded(stacks: FoldedStack[]): FoldedStack[] {
  const byKey = new Map<string, FoldedStack>();
  for (const s of stacks) {
    const key = s.frames.join(";");
    const seen = byKey.get(key);
    if (seen) seen.count += s.count;
    else byKey.set(key, { frames: s.frames.slice(), count: s.count });
  }
  return [...byKey.values()];
}
