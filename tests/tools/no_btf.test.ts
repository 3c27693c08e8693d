/**
 * A kernel without BTF (no /sys/kernel/btf/vmlinux: CONFIG_DEBUG_INFO_BTF
 * off). This kernel has it, so each tool runs in a private mount namespace
 * with an empty tmpfs over /sys/kernel/btf: the real feature probe and the
 * real BTF reader meet a missing file, no test hook involved. A tool that
 * needs struct layouts must exit 1 with one line naming the file and
 * print nothing on stdout; a tool on tracefs tracepoints only (opensnoop)
 * still runs.
 */
import { equal as assertEquals, ok as assert } from "node:assert/strict";
import { kernelTest } from "../support/kernel.ts";
import { run } from "../support/process.ts";
import { REPO_ROOT } from "../support/tool_process.ts";

/** `deno run -A tools/TOOL.ts ARGS` where /sys/kernel/btf is an empty directory. */
async function withoutBtf(tool: string, args: string[]) {
  return await run("unshare", [
    "-m",
    "bash",
    "-c",
    `mount -t tmpfs none /sys/kernel/btf && exec deno run -A ${REPO_ROOT}tools/${tool}.ts "$@"`,
    "bash",
    ...args,
  ]);
}

for (const tool of ["runqlat", "biolatency", "tcplife", "execsnoop", "ext4slower"]) {
  kernelTest(
    `${tool} without vmlinux BTF: exit 1, one line naming it`,
    async () => {
      const out = await withoutBtf(tool, []);
      assertEquals(out.code, 1, out.stderr);
      assertEquals(out.stdout, "");
      const lines = out.stderr.trim().split("\n");
      assertEquals(lines.length, 1, out.stderr);
      assert(lines[0].startsWith(`${tool}: `), lines[0]);
      assert(lines[0].includes("/sys/kernel/btf/vmlinux"), lines[0]);
      assert(lines[0].includes("BTF"), lines[0]);
    },
  );
}

kernelTest("opensnoop without vmlinux BTF: tracefs tracepoints need none, it runs", async () => {
  const out = await withoutBtf("opensnoop", ["-d", "1", "-p", "1"]);
  assertEquals(out.code, 0, out.stderr);
  assert(out.stdout.startsWith("PID    COMM"), out.stdout);
});
