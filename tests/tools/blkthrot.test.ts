/**
 * blkthrot needs a kprobe on blk_throtl_bio. On a kernel without kprobes (the
 * build machines: CONFIG_KPROBE_EVENTS off) it tries, prints the kernel's
 * answer in one line, exits 1 and leaves nothing behind; flags are still
 * checked first.
 */
import {
  deepEqual as assertDeepEqual,
  equal as assertEquals,
  ok as assert,
} from "node:assert/strict";
import { bpftoolJson, kernelTest, waitFor } from "../support/kernel.ts";
import { run } from "../support/process.ts";
import { REPO_ROOT, runToolOnce } from "../support/tool_process.ts";
import { verifyBuilt } from "../../lib/cli/session.ts";
import { tool } from "../../tools/blkthrot.ts";

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

const HAS_KPROBES = exists("/sys/bus/event_source/devices/kprobe") ||
  exists("/sys/kernel/tracing/kprobe_events");

/** Names of BPF objects of a kind (prog or map) that start with `blkthrot`. */
async function blkthrotObjects(kind: "prog" | "map"): Promise<string[]> {
  const objects = await bpftoolJson<{ name?: string }[]>(kind, "show");
  return objects.map((o) => o.name ?? "").filter((n) => n.startsWith("blkthrot"));
}

kernelTest(
  "blkthrot without kprobes: tries its kprobe, the kernel's answer in one line, exit 1",
  async () => {
    assert(!HAS_KPROBES, "this test is for kernels without kprobes (the build machines)");
    const { code, stdout, stderr } = await runToolOnce("blkthrot", []);
    assertEquals(code, 1, stderr);
    assertEquals(stdout, "");
    assertEquals(
      stderr,
      "blkthrot: kprobes are not enabled in this kernel (CONFIG_KPROBE_EVENTS)\n",
    );
    // The kernel frees programs and maps asynchronously after the last fd closes.
    await waitFor(
      async () =>
        (await blkthrotObjects("prog")).length === 0 && (await blkthrotObjects("map")).length === 0,
      3000,
      "blkthrot programs and maps to go",
    );
  },
);

/** The attempt is real (strace is installed by .ci/install --test): programs are loaded, then released. */
kernelTest(
  "blkthrot without kprobes: it loads its programs before the attach fails (strace)",
  async () => {
    const out = await run("strace", [
      "-f",
      "-qq",
      "-e",
      "trace=bpf",
      "deno",
      "run",
      "-A",
      `${REPO_ROOT}tools/blkthrot.ts`,
    ]);
    assertEquals(out.code, 1, out.stderr);
    assert(/^blkthrot: kprobes are not enabled/m.test(out.stderr), out.stderr);
    const loads = out.stderr.split("\n").filter((l) =>
      /\bbpf\(BPF_PROG_LOAD,.*"blkthrot_entry"/.test(l)
    );
    assertEquals(loads.length, 1, out.stderr);
  },
  { commands: ["strace"] },
);

for (
  const [args, pattern] of [
    [["-x"], /^blkthrot: unknown option '-x'/],
    [["1"], /^blkthrot: unrecognized positional argument: '1'/],
  ] as [string[], RegExp][]
) {
  Deno.test(`blkthrot ${args.join(" ")}: usage error before the kprobe check, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("blkthrot", args);
    assertEquals(code, 2);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(pattern.test(stderr), stderr);
  });
}

Deno.test("blkthrot -h: USAGE and EXAMPLES, exit 0, even without kprobes", async () => {
  const { code, stdout } = await runToolOnce("blkthrot", ["-h"]);
  assertEquals(code, 0);
  assert(/^USAGE: blkthrot /m.test(stdout), stdout);
  assert(/^EXAMPLES:/m.test(stdout), stdout);
  assert(stdout.split("\n").every((l) => l.length < 80));
});

Deno.test("blkthrot: its kprobe and kretprobe build offline; our verifier accepts them", () => {
  const programs = tool.programs([]);
  assertDeepEqual(programs.map((p) => [p.name, p.type, p.attach.kind]), [
    ["blkthrot_entry", "kprobe", "kprobe"],
    ["blkthrot_ret", "kprobe", "kprobe"],
  ]);
  for (const p of programs) assert(verifyBuilt(p).ok, p.name);
});
