/**
 * argp's own flags, accepted by every tool in bpftk.ts TOOLS as libbpf-tools
 * accepts them: `-?` (the help, as -h), `--usage` (the synopsis, one line),
 * `-V` and `--version` (the version). Each is run as a user would type it,
 * through bpftk.ts, and needs no root (nothing is loaded).
 */
import { equal as assertEquals, match as assertMatch, ok as assert } from "node:assert/strict";
import { TOOLS } from "../bpftk.ts";
import { VERSION } from "../lib/cli/tool.ts";
import { run } from "./support/process.ts";

const ROOT = new URL("../", import.meta.url).pathname;

const bpftk = (...args: string[]) =>
  run("deno", ["run", "-A", `${ROOT}bpftk.ts`, ...args], { deadlineMs: 30_000 });

/** Runs `fn` over `items`, `width` at a time. */
async function inBatches<T>(items: T[], width: number, fn: (item: T) => Promise<void>) {
  for (let i = 0; i < items.length; i += width) {
    await Promise.all(items.slice(i, i + width).map(fn));
  }
}

Deno.test("every tool: -?, --usage, -V and --version, as argp has them", async () => {
  const names = Object.keys(TOOLS);
  assert(names.length > 10);
  await inBatches(names, 6, async (name) => {
    const { tool } = await TOOLS[name]();
    const help = tool.help(name);

    const question = await bpftk(name, "-?");
    assertEquals(question.code, 0, `${name} -?: ${question.stderr}`);
    assertEquals(question.stdout, help, `${name} -? prints the help`);
    assertEquals(question.stderr, "");

    const usage = await bpftk(name, "--usage");
    assertEquals(usage.code, 0, `${name} --usage: ${usage.stderr}`);
    assertMatch(usage.stdout, new RegExp(`^USAGE: ${name} \\[-h\\][^\\n]*\\n$`), name);
    // The synopsis is the help's USAGE, unwrapped.
    const helpUsage = help.match(/^USAGE: [^]*?(?=\n\n)/m)?.[0].replace(/\s+/g, " ");
    assertEquals(usage.stdout.trimEnd().replace(/\s+/g, " "), helpUsage, name);

    for (const flag of ["-V", "--version"]) {
      const version = await bpftk(name, flag);
      assertEquals(version.code, 0, `${name} ${flag}: ${version.stderr}`);
      assertEquals(version.stdout, `${name} (bpftk) ${VERSION}\n`, `${name} ${flag}`);
      assertEquals(version.stderr, "");
    }
  });
});

Deno.test("argp flags win over the rest of the line, as -h does", async () => {
  // A value that would be a usage error does not matter once -? or -V is there.
  const question = await bpftk("runqlat", "-p", "-5", "-?");
  assertEquals(question.code, 0);
  assertMatch(question.stdout, /^USAGE: runqlat /m);
  const version = await bpftk("execsnoop", "-x", "-V");
  assertEquals(version.code, 0);
  assertEquals(version.stdout, `execsnoop (bpftk) ${VERSION}\n`);
});
