/**
 * bashreadline against an interactive bash on a pseudo-terminal (Python's
 * pty module) typing known lines: each appears exactly once, with that
 * bash's PID, in order; a line longer than the record is cut at 79 bytes.
 * Then the error paths, and that nothing stays loaded.
 */
import { deepEqual, equal as assertEquals, ok as assert } from "node:assert/strict";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { Spawned } from "../support/process.ts";
import { waitForPrograms } from "../support/event_tools.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";
import { escapeText } from "../../lib/format/escape.ts";

/**
 * Runs `bash -i` on a pty, waits for "go" on stdin, types each line of argv[1]
 * (a JSON list) with a pause, then "exit". Prints bash's PID first.
 */
const PTY_DRIVER = String.raw`
import json, os, pty, select, sys, time
lines = json.loads(sys.argv[1])
pid, fd = pty.fork()
if pid == 0:
    os.environ["PS1"] = "$ "
    os.execvp("bash", ["bash", "--norc", "--noprofile", "-i"])
print(pid, flush=True)
def drain(t=0.15):
    while True:
        r, _, _ = select.select([fd], [], [], t)
        if not r: return
        try: os.read(fd, 65536)
        except OSError: return
drain()
sys.stdin.readline()
for line in lines + ["exit"]:
    os.write(fd, (line + "\n").encode())
    drain()
os.waitpid(pid, 0)
`;

const TYPED = [
  "echo hello world",
  "true 'single quoted' \"double quoted\"",
  ": " + "x".repeat(120),
  "printf '%s\\n' a b c >/dev/null",
];

/** Starts the pty bash; returns its PID and a function that types the lines and waits. */
async function startTypist(lines: string[]) {
  const driver = new Spawned("python3", ["-c", PTY_DRIVER, JSON.stringify(lines)], {
    stdin: "piped",
  });
  await driver.waitForOutput(/^\d+\n/);
  const pid = Number(driver.stdout.trim());
  assert(pid > 0, `pty driver printed ${driver.stdout}`);
  return {
    pid,
    async type() {
      await driver.write("go\n");
      await driver.closeStdin();
      const { code, stderr } = await driver.wait();
      assertEquals(code, 0, stderr);
    },
  };
}

/** Text rows of `pid`'s lines. */
function textRows(stdout: string, pid: number): string[] {
  return stdout.split("\n").slice(1).filter(Boolean).map((l) => {
    const m = l.match(/^(\d\d:\d\d:\d\d)\s+(\d+)\s+(.*)$/)!;
    assert(m, `row: ${l}`);
    assertEquals(l.indexOf(m[2]), 10, "PID column starts at 10 (%-9s %-7d)");
    return { pid: Number(m[2]), command: m[3] };
  }).filter((r) => r.pid === pid).map((r) => r.command);
}

/** JSON events' commands of `pid`. */
function jsonCommands(stdout: string, pid: number): string[] {
  return stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l))
    .filter((e) => e.pid === pid).map((e) => e.command);
}

kernelTest("bashreadline: typed lines appear once each, with bash's PID", async () => {
  const before = (await loadedProgramNames()).filter((n) => n === "bashreadline").length;
  const text = new ToolProcess("bashreadline", []);
  const json = new ToolProcess("bashreadline", ["--json"]);
  try {
    await text.waitForOutput(/^TIME\s+PID\s+COMMAND$/m);
    await waitForPrograms("bashreadline", before + 2);
    const typist = await startTypist(TYPED);
    await typist.type();
    // Done when both have printed every typed line (the workload's count), not after a pause.
    const expected = [...TYPED, "exit"].map((l) => l.slice(0, 79));
    await waitFor(
      () =>
        textRows(text.stdout, typist.pid).length >= expected.length &&
        jsonCommands(json.stdout, typist.pid).length >= expected.length,
      15_000,
      `${expected.length} lines in both outputs`,
    ).catch(() => {}); // the assertions below say what is missing
    const t = await text.stop(), j = await json.stop();
    assertEquals(t.code, 0, t.stderr);
    assertEquals(j.code, 0, j.stderr);
    // Text output escapes as lib/format/escape.ts does (a backslash doubles); JSON keeps bytes.
    deepEqual(textRows(t.stdout, typist.pid), expected.map(escapeText));
    deepEqual(jsonCommands(j.stdout, typist.pid), expected);
  } finally {
    text.killTree();
    json.killTree();
  }
  const after = (await loadedProgramNames()).filter((n) => n === "bashreadline").length;
  assertEquals(after, before, "nothing of ours stays loaded");
});

kernelTest("bashreadline: usage and target errors", async () => {
  const bad = await runToolOnce("bashreadline", ["-x"]);
  assertEquals(bad.code, 2);
  assertEquals(bad.stderr.trim().split("\n").length, 1);
  const extra = await runToolOnce("bashreadline", ["foo"]);
  assertEquals(extra.code, 2);
  const noSymbol = await runToolOnce("bashreadline", ["-s", "/bin/true"]);
  assertEquals(noSymbol.code, 1);
  assertEquals(
    noSymbol.stderr,
    "bashreadline: /bin/true has no function 'readline' (give the library that has it with -s)\n",
  );
  const missing = await runToolOnce("bashreadline", ["-s", "/no/such/lib.so"]);
  assertEquals(missing.code, 2);
  assertEquals(
    missing.stderr,
    "bashreadline: -s /no/such/lib.so: no such file or directory (see 'bashreadline --help')\n",
  );
  // A directory: one line naming the path and what is wrong, not an OS error number.
  const dir = Deno.makeTempDirSync();
  try {
    const r = await runToolOnce("bashreadline", ["-s", dir]);
    assertEquals(r.code, 2);
    assertEquals(r.stderr, `bashreadline: -s ${dir}: is a directory (see 'bashreadline --help')\n`);
    assertEquals(r.stdout, "");
  } finally {
    Deno.removeSync(dir);
  }
  // -s alone: bcc's default library, checked like any other path.
  const bare = await runToolOnce("bashreadline", ["-s", "--dump"]);
  if (bare.code !== 0) {
    assertEquals(bare.code, 2);
    assert(bare.stderr.startsWith("bashreadline: -s /lib/libreadline.so: "), bare.stderr);
  }
  const help = await runToolOnce("bashreadline", ["-h"]);
  assertEquals(help.code, 0);
  assert(help.stdout.includes("USAGE") || help.stdout.includes("usage"), help.stdout);
});
