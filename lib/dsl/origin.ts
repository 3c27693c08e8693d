/**
 * Where a DSL call came from: the first stack frame outside the DSL and the
 * bytecode package, as "tools/runqlat.ts:42". Diagnostics print it so a
 * mistake names the tool line that produced the instruction.
 */
const INTERNAL = [
  new URL("./", import.meta.url).pathname, // lib/dsl
  new URL("../../bytecode/", import.meta.url).pathname,
];

export function callerOrigin(): string | undefined {
  const stack = new Error().stack;
  if (!stack) return undefined;
  for (const line of stack.split("\n").slice(1)) {
    const m = line.match(/(?:file:\/\/)?(\/[^\s()]+):(\d+):\d+\)?$/);
    if (!m || INTERNAL.some((dir) => m[1].startsWith(dir))) continue;
    return `${shorten(m[1])}:${m[2]}`;
  }
  return undefined;
}

function shorten(path: string): string {
  const i = path.search(/\/(tools|lib|tests|bench)\//);
  return i >= 0 ? path.slice(i + 1) : path;
}
