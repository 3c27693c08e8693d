/**
 * blkthrot needs a kprobe on blk_throtl_bio. On a kernel without kprobes (the
 * build machines: CONFIG_KPROBE_EVENTS off) it must say so in one line, exit
 * 1 and leave nothing behind; flags are still checked first.
 */
import {
  deepEqual as assertDeepEqual,
  equal as assertEquals,
  ok as assert,
} from "node:assert/strict";
import { kernelTest } from "../support/kernel.ts";
import { REPO_ROOT, runToolOnce } from "../support/tool_process.ts";

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
  const out = await new Deno.Command("bpftool", { args: ["-j", kind, "show"], stdout: "piped" })
    .output();
  assert(out.success, `bpftool ${kind} show failed`);
  const objects = JSON.parse(new TextDecoder().decode(out.stdout)) as { name?: string }[];
  return objects.map((o) => o.name ?? "").filter((n) => n.startsWith("blkthrot"));
}

Deno.test(
  kernelTest("blkthrot without kprobes: one line naming what is missing, exit 1"),
  async () => {
    assert(!HAS_KPROBES, "this test is for kernels without kprobes (the build machines)");
    const { code, stdout, stderr } = await runToolOnce("blkthrot", []);
    assertEquals(code, 1, stderr);
    assertEquals(stdout, "");
    assertEquals(stderr.split("\n").filter(Boolean).length, 1, stderr);
    assert(
      /^blkthrot: .*blk_throtl_bio needs kprobes, which this kernel does not have \(CONFIG_KPROBE_EVENTS is off\)$/m
        .test(stderr),
      stderr,
    );
    assertDeepEqual(await blkthrotObjects("prog"), [], "no program loaded");
    assertDeepEqual(await blkthrotObjects("map"), [], "no map created");
  },
);

/** An extra proof where strace is installed (CI does not install it): no bpf() at all. */
const STRACE_TEST = kernelTest("blkthrot without kprobes: not one bpf() call is made (strace)");
Deno.test(
  { ...STRACE_TEST, ignore: STRACE_TEST.ignore || !exists("/usr/bin/strace") },
  async () => {
    const out = await new Deno.Command("strace", {
      args: [
        "-f",
        "-qq",
        "-e",
        "trace=bpf,perf_event_open",
        "deno",
        "run",
        "-A",
        `${REPO_ROOT}tools/blkthrot.ts`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 1, stderr);
    const calls = stderr.split("\n").filter((l) => /\b(bpf|perf_event_open)\(/.test(l));
    assertDeepEqual(calls, [], "the kprobe check comes before any kernel object is made");
  },
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
