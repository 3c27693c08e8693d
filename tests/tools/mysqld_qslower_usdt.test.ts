/**
 * mysqld_qslower's USDT path. Debian's MariaDB has no USDT probes (the tool
 * falls back to uprobes on dispatch_command there), so a stand-in server
 * with MySQL's probes, mysql:query__start/query__done behind semaphores
 * (tests/fixtures/usdt_queries.c, <sys/sdt.h> from systemtap-sdt-dev), is
 * compiled here and traced by the tool itself. Truth from the workload: N
 * queries "SELECT i", query i sleeping i ms, each run with the probes
 * enabled (the program counts the semaphore it sees raised), and the
 * semaphores back at 0 once the tool has exited.
 */
import { deepEqual, equal as assertEquals, ok as assert } from "node:assert/strict";
import { waitForPrograms } from "../support/event_tools.ts";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { runOk, Spawned } from "../support/process.ts";
import { ToolProcess } from "../support/tool_process.ts";

const N = 12;
const SOURCE = new URL("../fixtures/usdt_queries.c", import.meta.url).pathname;
const SDT_HEADERS = ["/usr/include/sys/sdt.h", "/usr/include/x86_64-linux-gnu/sys/sdt.h"];

function sdtHeader(): string | undefined {
  return SDT_HEADERS.find((p) => {
    try {
      return Deno.statSync(p).isFile;
    } catch {
      return false;
    }
  });
}

kernelTest(
  "mysqld_qslower: USDT probes of a server built with them, N queries, N events",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "bpftk-usdt-" });
    const before = (await loadedProgramNames()).filter((n) => n === "mysqld_qs_done").length;
    let server: Spawned | undefined, tool: ToolProcess | undefined;
    try {
      await runOk("gcc", ["-O1", "-o", `${dir}/queries`, SOURCE]);
      server = new Spawned(`${dir}/queries`, [String(N)], { stdin: "piped" });
      await server.waitForOutput(/^pid \d+$/m);
      tool = new ToolProcess("mysqld_qslower", [String(server.pid), "0", "--json"]);
      await waitForPrograms("mysqld_qs_done", before + 1);
      await server.write("go\n");
      await server.waitForOutput(/^enabled \d+$/m);
      assertEquals(server.stdout.match(/^enabled (\d+)$/m)![1], String(N), "semaphore raised");
      const events = () => tool!.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l));
      await waitFor(() => events().length >= N, 15_000, `${N} events`).catch(() => {});
      const out = await tool.stop();
      assertEquals(out.code, 0, out.stderr);
      const got = events();
      deepEqual(got.map((e) => e.query), Array.from({ length: N }, (_, i) => `SELECT ${i}`));
      for (const [i, e] of got.entries()) {
        assertEquals(e.pid, server.pid);
        assert(e.ms >= i, `SELECT ${i} slept ${i} ms, shown ${e.ms} ms`);
      }
      // The tool lowered the semaphores it raised on its way out.
      await server.write("semaphores?\n");
      await server.waitForOutput(/^semaphores /m);
      assert(/^semaphores 0 0$/m.test(server.stdout), server.stdout);
      assertEquals((await server.wait()).code, 0);
    } finally {
      tool?.killTree();
      server?.killTree();
      await Deno.remove(dir, { recursive: true });
    }
  },
  {
    commands: ["gcc"],
    missing: sdtHeader() ? undefined : "no <sys/sdt.h> (apt-get install systemtap-sdt-dev)",
  },
);
