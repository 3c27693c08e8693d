/**
 * The architecture of DESIGN.md, checked: only lib/kernel touches the kernel
 * and libc. Outside it, no .ts file of the product (lib/, tools/, bpftk.ts,
 * mod.ts) names dlopen, UnsafePointer, Deno.Command or /proc/PID/mem, not
 * even in a comment: a mention is a sign the boundary moved.
 */
import { deepEqual } from "node:assert/strict";

const ROOT = new URL("../../../", import.meta.url).pathname;

const FORBIDDEN: [string, RegExp][] = [
  ["dlopen", /dlopen/],
  ["UnsafePointer", /UnsafePointer/],
  ["Deno.Command", /Deno\.Command/],
  ["/proc/*/mem", /\/proc\/[^/\s]+\/mem\b/],
];

function* tsFiles(dir: string): Generator<string> {
  for (const entry of Deno.readDirSync(`${ROOT}${dir}`)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) yield* tsFiles(path);
    else if (entry.name.endsWith(".ts")) yield path;
  }
}

function productFiles(): string[] {
  return [
    ...[...tsFiles("lib")].filter((p) => !p.startsWith("lib/kernel/")),
    ...tsFiles("tools"),
    "bpftk.ts",
    "mod.ts",
  ].sort();
}

Deno.test("only lib/kernel touches the kernel and libc", () => {
  const files = productFiles();
  deepEqual(files.length > 20, true, `found only ${files.length} files`);
  const found: string[] = [];
  for (const file of files) {
    Deno.readTextFileSync(`${ROOT}${file}`).split("\n").forEach((line, i) => {
      for (const [what, re] of FORBIDDEN) {
        if (re.test(line)) found.push(`${file}:${i + 1}: ${what}`);
      }
    });
  }
  deepEqual(found, []);
});

Deno.test("the boundary check sees what it looks for", () => {
  const samples = [
    'Deno.dlopen("libc.so.6", {})',
    "Deno.UnsafePointer.of(buf)",
    'new Deno.Command("mount")',
    "Deno.openSync(`/proc/${pid}/mem`)",
    '"/proc/self/mem"',
  ];
  deepEqual(samples.map((s) => FORBIDDEN.some(([, re]) => re.test(s))), samples.map(() => true));
  deepEqual(FORBIDDEN.some(([, re]) => re.test('"/proc/self/maps"')), false);
});
