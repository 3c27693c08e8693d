/**
 * bpftk.ts, the one entry for every tool: --list, dispatch by the first
 * argument and by argv[0] (busybox-style links), and that each tool script
 * stays runnable on its own.
 */
import {
  deepEqual,
  equal as assertEquals,
  match as assertMatch,
  ok as assert,
} from "node:assert/strict";
import { TOOLS } from "../bpftk.ts";
import { run as runProcess } from "./support/process.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** Runs a command to its end, killed after 30 s (a test never hangs). */
async function run(cmd: string, args: string[]) {
  return await runProcess(cmd, args, { deadlineMs: 30_000 });
}

const bpftk = (...args: string[]) => run("deno", ["run", "-A", `${ROOT}bpftk.ts`, ...args]);

Deno.test("bpftk --list: every tool once, with its summary, under 80 columns", async () => {
  const { code, stdout } = await bpftk("--list");
  assertEquals(code, 0);
  const lines = stdout.trimEnd().split("\n");
  deepEqual(lines.map((l) => l.split(/\s+/)[0]), Object.keys(TOOLS));
  for (const line of lines) {
    assert(line.length < 80, line);
    assertMatch(line, /^\S+\s+[A-Z].+\.$/);
  }
});

Deno.test("bpftk TOOL --help prints what the tool's own script prints", async () => {
  for (const name of ["runqlat", "execsnoop", "profile", "flamegraph"]) {
    const via = await bpftk(name, "--help");
    const own = await run("deno", ["run", "-A", `${ROOT}tools/${name}.ts`, "--help"]);
    assertEquals(via.code, 0);
    assertEquals(via.stdout, own.stdout);
    assertMatch(via.stdout, new RegExp(`^USAGE: ${name} `, "m"));
  }
});

Deno.test("bpftk: an unknown tool or none is a usage error", async () => {
  const unknown = await bpftk("nosuchtool", "1");
  assertEquals(unknown.code, 2);
  assertEquals(unknown.stderr, "bpftk: unknown tool 'nosuchtool' (see 'bpftk --list')\n");
  const none = await bpftk();
  assertEquals(none.code, 2);
  assertMatch(none.stdout, /^USAGE: bpftk TOOL/m);
});

Deno.test("bpftk called by a tool's name (a link, as busybox) runs that tool", async () => {
  // exec -a sets argv[0] as a symlink named after the tool would.
  const { code, stdout } = await run("bash", [
    "-c",
    `exec -a /usr/local/bin/runqlat deno run -A ${ROOT}bpftk.ts --version`,
  ]);
  assertEquals(code, 0);
  assertEquals(stdout, "runqlat (bpftk) 0.1.0\n");
});

Deno.test("every tool script is executable, has its shebang, and declares itself", async () => {
  for (const [name, load] of Object.entries(TOOLS)) {
    const path = `${ROOT}tools/${name}.ts`;
    const mode = Deno.statSync(path).mode ?? 0;
    assert((mode & 0o111) !== 0, `${path} is executable`);
    assertMatch(Deno.readTextFileSync(path), /^#!\/usr\/bin\/env -S deno run/);
    const { tool } = await load();
    assertEquals(tool.name, name === "biolateness" ? "biolatency" : name);
  }
});
