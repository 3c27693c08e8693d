/**
 * The automatic choice of perf buffers where the kernel has no BPF ring
 * buffers (before 5.8). The kernel here has them, so the feature probe is
 * made to meet a kernel without: libbpf is replaced (BPFTK_LIBBPF) by a
 * small library, compiled here, whose bpf_map_create fails for ring buffers
 * with EINVAL as such a kernel does, and is libbpf for everything else
 * (tests/fixtures/no_ringbuf_libbpf.c). Nothing forces the choice
 * (BPFTK_EVENT_BUFFER is unset): the probe's answer alone must pick perf
 * buffers, and a tool must then work on them.
 */
import { deepEqual, equal as assertEquals } from "node:assert/strict";
import { PausedWorkload, waitForPrograms } from "../../support/event_tools.ts";
import { kernelTest, loadedProgramNames, waitFor } from "../../support/kernel.ts";
import { run, runOk } from "../../support/process.ts";
import { REPO_ROOT, ToolProcess } from "../../support/tool_process.ts";

const SOURCE = new URL("../../fixtures/no_ringbuf_libbpf.c", import.meta.url).pathname;
const LIBBPF = "/lib/x86_64-linux-gnu/libbpf.so.1";
const BPF_MAP_TYPE_PERF_EVENT_ARRAY = 4, BPF_MAP_TYPE_RINGBUF = 27;

/** Builds the library in a new temp dir; returns its path. */
async function buildNoRingbufLibbpf(dir: string): Promise<string> {
  const lib = `${dir}/libbpf-no-ringbuf.so`;
  // --no-as-needed: keep the dependency on libbpf.so.1, whose symbols this library passes on.
  await runOk("gcc", ["-shared", "-fPIC", "-o", lib, SOURCE, "-Wl,--no-as-needed", LIBBPF, "-ldl"]);
  return lib;
}

/** Types of the BPF maps process `pid` holds open (/proc/PID/fdinfo). */
function mapTypesOf(pid: number): number[] {
  const types: number[] = [];
  for (const fd of Deno.readDirSync(`/proc/${pid}/fdinfo`)) {
    try {
      const m = Deno.readTextFileSync(`/proc/${pid}/fdinfo/${fd.name}`).match(
        /^map_type:\s+(\d+)$/m,
      );
      if (m) types.push(Number(m[1]));
    } catch {
      // closed meanwhile
    }
  }
  return types;
}

const CHOICE = `import { eventBufferKind } from "${REPO_ROOT}lib/kernel/ringbuf.ts";
console.log(eventBufferKind());`;

kernelTest(
  "no ring buffers in the kernel: the probe says so and perf buffers are chosen",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "bpftk-noringbuf-" });
    try {
      const lib = await buildNoRingbufLibbpf(dir);
      const env = { BPFTK_LIBBPF: lib };
      const withShim = await run("deno", ["eval", CHOICE], { env });
      assertEquals(withShim.code, 0, withShim.stderr);
      assertEquals(withShim.stdout.trim(), "perf");
      const real = await run("deno", ["eval", CHOICE]);
      assertEquals(real.stdout.trim(), "ringbuf", "this kernel has ring buffers");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
  { commands: ["gcc"] },
);

kernelTest(
  "no ring buffers in the kernel: execsnoop shows every exec through a perf buffer",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "bpftk-noringbuf-" });
    const work = new PausedWorkload("bash", [
      "-c",
      "read go; for i in 1 2 3 4 5; do /bin/true perf-fallback-$i; done",
    ]);
    let tool: ToolProcess | undefined;
    try {
      const lib = await buildNoRingbufLibbpf(dir);
      const before = (await loadedProgramNames()).filter((n) => n === "execsnoop_atout").length;
      tool = new ToolProcess("execsnoop", ["-P", String(work.pid)], { env: { BPFTK_LIBBPF: lib } });
      await tool.waitForOutput(/PCOMM/);
      await waitForPrograms("execsnoop_atout", before + 1); // attached: the header comes first
      const types = mapTypesOf(tool.pid);
      assertEquals(types.filter((t) => t === BPF_MAP_TYPE_RINGBUF).length, 0, `${types}`);
      assertEquals(types.filter((t) => t === BPF_MAP_TYPE_PERF_EVENT_ARRAY).length, 1, `${types}`);
      assertEquals((await work.run()).code, 0);
      const shown = () => [...tool!.stdout.matchAll(/perf-fallback-(\d)/g)].map((m) => m[1]);
      await waitFor(() => shown().length >= 5, 15_000, "5 execs shown").catch(() => {});
      const out = await tool.stop();
      assertEquals(out.code, 0, out.stderr);
      // Per-CPU perf buffers are read one CPU after the other: any order, each once.
      deepEqual(shown().sort(), ["1", "2", "3", "4", "5"], out.stdout);
    } finally {
      tool?.killTree();
      work.killTree();
      await Deno.remove(dir, { recursive: true });
    }
  },
  { commands: ["gcc"] },
);
