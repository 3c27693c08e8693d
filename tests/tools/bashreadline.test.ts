/**
 * bashreadline against an interactive bash on a pseudo-terminal (Python's
 * pty module) typing known lines: each appears exactly once, with that
 * bash's PID, in order; a line longer than the record is cut at 79 bytes.
 * Then the error paths, and that nothing stays loaded.
 */
import { deepEqual, equal as assertEquals, ok as assert } from "node:assert/strict";
import { kernelTest, loadedProgramNames } from "../support/kernel.ts";
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
  const child = new Deno.Command("python3", {
    args: ["-c", PTY_DRIVER, JSON.stringify(lines)],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  const pid = Number(text.trim());
  assert(pid > 0, `pty driver printed ${text}`);
  return {
    pid,
    async type() {
      const w = child.stdin.getWriter();
      await w.write(new TextEncoder().encode("go\n"));
      await w.close();
      reader.releaseLock();
      await child.stdout.cancel().catch(() => {});
      const status = await child.status;
      await child.stderr.cancel().catch(() => {});
      assertEquals(status.code, 0);
    },
  };
}

Deno.test(kernelTest("bashreadline: typed lines appear once each, with bash's PID"), async () => {
  const before = (await loadedProgramNames()).filter((n) => n === "bashreadline").length;
  const text = new ToolProcess("bashreadline", []);
  const json = new ToolProcess("bashreadline", ["--json"]);
  try {
    await text.waitForOutput(/^TIME\s+PID\s+COMMAND$/m);
    await waitForPrograms("bashreadline", before + 2);
    const typist = await startTypist(TYPED);
    await typist.type();
    await new Promise((r) => setTimeout(r, 500)); // one more drain of the event loop
    text.kill("SIGINT");
    json.kill("SIGINT");
    const t = await text.finish(), j = await json.finish();
    assertEquals(t.code, 0, t.stderr);
    assertEquals(j.code, 0, j.stderr);

    const expected = [...TYPED, "exit"].map((l) => l.slice(0, 79));
    const rows = t.stdout.split("\n").slice(1).filter(Boolean).map((l) => {
      const m = l.match(/^(\d\d:\d\d:\d\d)\s+(\d+)\s+(.*)$/)!;
      assert(m, `row: ${l}`);
      assertEquals(l.indexOf(m[2]), 10, "PID column starts at 10 (%-9s %-7d)");
      return { pid: Number(m[2]), command: m[3] };
    }).filter((r) => r.pid === typist.pid);
    // Text output escapes as lib/format/escape.ts does (a backslash doubles); JSON keeps bytes.
    deepEqual(rows.map((r) => r.command), expected.map(escapeText));

    const events = j.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l))
      .filter((e) => e.pid === typist.pid);
    deepEqual(events.map((e) => e.command), expected);
  } finally {
    for (const tool of [text, json]) {
      try {
        tool.kill("SIGKILL");
      } catch { /* already gone */ }
    }
  }
  const after = (await loadedProgramNames()).filter((n) => n === "bashreadline").length;
  assertEquals(after, before, "nothing of ours stays loaded");
});

Deno.test(kernelTest("bashreadline: usage and target errors"), async () => {
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
