/**
 * What every tool gets from its declaration (lib/cli/tool.ts): the same help
 * layout, the same usage errors for bad values, long waits that wait, and a
 * clear word when run without -A.
 */
import { equal, match, ok, throws } from "node:assert/strict";
import { TOOLS } from "../../../bpftk.ts";
import { UsageError } from "../../../lib/cli/usage.ts";
import { kernelTest } from "../../support/kernel.ts";
import { run } from "../../support/process.ts";
import { ToolProcess } from "../../support/tool_process.ts";

const ROOT = new URL("../../../", import.meta.url).pathname;

Deno.test("every tool's help: USAGE, EXAMPLES, OPTIONS, under 80 columns", async () => {
  for (const [name, load] of Object.entries(TOOLS)) {
    const help = (await load()).tool.help(name);
    match(help, new RegExp(`^USAGE: ${name} \\[-h\\]`, "m"), name);
    match(help, /^EXAMPLES:\n/m, name);
    match(help, /^OPTIONS:\n/m, name);
    for (const line of help.split("\n")) ok(line.length < 80, `${name}: ${line}`);
  }
});

/** [tool, argv, what the one-line error must say] */
const BAD_VALUES: [string, string[], RegExp][] = [
  ["runqlat", ["-p", "-1"], /^invalid PID '-1': negative/],
  ["runqlat", ["1", "99999999999999999999"], /^invalid count '9+': too large/],
  ["runqlat", ["-c", ""], /^invalid -c: empty cgroup path/],
  ["runqlat", ["-c", "/nonexistent"], /^-c \/nonexistent: no such cgroup directory/],
  ["execsnoop", ["-u", "-5"], /^invalid UID '-5': negative/],
  ["opensnoop", ["-d", "-1"], /negative/],
  ["profile", ["--stack-storage-size", "999999999"], /too large \(at most 262144\)/],
  ["offcputime", ["--stack-storage-size", "4294967296"], /too large \(at most 262144\)/],
];

for (const [name, argv, message] of BAD_VALUES) {
  Deno.test(`${name} ${argv.join(" ")}: a usage error that says what is wrong`, async () => {
    const { tool } = await TOOLS[name]();
    throws(() => tool.parse(argv), (e: Error) => {
      ok(e instanceof UsageError, String(e));
      match(e.message, message);
      return true;
    });
  });
}

Deno.test("a tool run without -A says so in one line, exit 1", async () => {
  const out = await run("deno", ["run", `${ROOT}tools/runqlat.ts`, "1", "1"], {
    deadlineMs: 30_000,
  });
  equal(out.code, 1);
  equal(out.stderr, "runqlat: run with deno run -A (the tool needs --allow-all)\n");
});

kernelTest("runqlat 2147484 1: a 25-day interval waits (no timer overflow)", async () => {
  const child = new ToolProcess("runqlat", ["2147484", "1"]);
  await child.waitForOutput(/Hit Ctrl-C/);
  // A timer that overflowed would fire at once and the tool would exit now.
  await new Promise((r) => setTimeout(r, 1500));
  equal(child.exited, false, "still waiting 1.5 s later");
  const out = await child.stop();
  equal(out.code, 0, out.stderr);
  equal(out.stderr, "");
  match(out.stdout, /usecs\s+: count\s+distribution/);
});
