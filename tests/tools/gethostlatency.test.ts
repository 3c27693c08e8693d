/**
 * gethostlatency against a workload whose truth is known: a small C program
 * (built here with gcc) calls getaddrinfo("localhost") five times,
 * gethostbyname("localhost") twice and gethostbyname2("localhost", AF_INET)
 * once, timing each call itself with CLOCK_MONOTONIC around it. Our text
 * run (system wide), our --json -p run and libbpf-tools gethostlatency -p
 * watch it in the same window.
 */
import { deepEqual, equal as assertEquals, ok as assert } from "node:assert/strict";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { PausedWorkload, ReferenceTool, waitForPrograms } from "../support/event_tools.ts";
import { runOk } from "../support/process.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";

const REFERENCE = "/usr/sbin/gethostlatency";

/** Waits for a line on stdin, does the 8 lookups, prints "FUNC US" for each, then "done". */
const WORKLOAD_C = `
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
static double now_us(void) {
  struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}
int main(void) {
  getchar();
  struct addrinfo hints, *res;
  memset(&hints, 0, sizeof hints);
  for (int i = 0; i < 5; i++) {
    double t0 = now_us();
    int rc = getaddrinfo("localhost", NULL, &hints, &res);
    double t1 = now_us();
    if (rc == 0) freeaddrinfo(res);
    printf("getaddrinfo %.3f\\n", t1 - t0);
  }
  for (int i = 0; i < 2; i++) {
    double t0 = now_us();
    gethostbyname("localhost");
    printf("gethostbyname %.3f\\n", now_us() - t0);
  }
  double t0 = now_us();
  gethostbyname2("localhost", AF_INET);
  printf("gethostbyname2 %.3f\\n", now_us() - t0);
  printf("done\\n");
  fflush(stdout);
  while (getchar() != EOF) {}
  return 0;
}
`;

async function assertNoneLoaded(): Promise<void> {
  await waitFor(
    async () => !(await loadedProgramNames()).some((n) => n.startsWith("gethostlat_")),
    5000,
    "gethostlatency to unload",
  );
}

kernelTest(
  "gethostlatency: 5 getaddrinfo + 2 gethostbyname + 1 gethostbyname2, as libbpf-tools",
  async (t) => {
    const dir = Deno.makeTempDirSync({ prefix: "gethostlatency-test-" });
    Deno.writeTextFileSync(`${dir}/gai.c`, WORKLOAD_C);
    await runOk("gcc", ["-O0", "-o", `${dir}/gaiwl`, `${dir}/gai.c`]);
    const work = new PausedWorkload(`${dir}/gaiwl`, []);
    const W = work.pid;
    const text = new ToolProcess("gethostlatency", []);
    const json = new ToolProcess("gethostlatency", ["--json", "-p", String(W)]);
    const ref = new ReferenceTool(REFERENCE, ["-p", String(W)]);
    const out: Record<string, { code: number; stdout: string; stderr: string }> = {};
    try {
      await text.waitForOutput(/LATms +HOST/);
      await ref.waitForOutput(/LATms +HOST/, 30_000);
      await waitForPrograms("gethostlat_r2", 2);
      await work.write("go\n");
      await work.waitForOutput(/done/);
      const mine = (s: string) =>
        s.split("\n").filter((l) => l.split(/\s+/)[1] === String(W) || l.includes(`"pid":${W}`))
          .length;
      await waitFor(
        () => [text, json, ref].every((p) => mine(p.stdout) >= 8),
        15_000,
        "eight lookups everywhere",
      ).catch(() => {});
    } finally {
      out.text = await text.stop();
      out.json = await json.stop();
      out.ref = await ref.stop("SIGINT");
      await work.closeStdin();
      out.work = await work.wait();
      Deno.removeSync(dir, { recursive: true });
    }
    for (const [name, o] of Object.entries(out)) assertEquals(o.code, 0, `${name}: ${o.stderr}`);
    // The workload's own measure of each call, in µs, in call order.
    const truth = out.work.stdout.trim().split("\n").filter((l) => l !== "done").map((l) => {
      const [fn, us] = l.split(" ");
      return { fn, us: Number(us) };
    });
    assertEquals(truth.length, 8);

    await t.step("text: eight lines for the workload, host localhost, LATms within its own", () => {
      assertEquals(
        out.text.stdout.split("\n")[0],
        "TIME     PID     COMM             LATms      HOST",
      );
      const lines = out.text.stdout.split("\n").filter((l) => l.split(/\s+/)[1] === String(W));
      assertEquals(lines.length, 8, out.text.stdout);
      for (const [i, l] of lines.entries()) {
        const m = l.match(/^(\d\d:\d\d:\d\d) (\d+) +(\S+) +(\d+\.\d{3}) +(\S*)$/);
        assert(m, l);
        deepEqual([m[3], m[5]], ["gaiwl", "localhost"]);
        const ms = Number(m[4]);
        // Our clock starts after the call began and stops before it returned.
        assert(ms > 0 && ms <= truth[i].us / 1000 + 0.0005, `${l} vs ${truth[i].us} us`);
      }
    });

    await t.step("--json -p: the same calls, each named, latencies within the workload's", () => {
      const events = out.json.stdout.trim().split("\n").map((l) => JSON.parse(l));
      deepEqual(
        events.map((e) => [e.pid, e.comm, e.function, e.host]),
        truth.map((c) => [W, "gaiwl", c.fn, "localhost"]),
      );
      for (const [i, e] of events.entries()) {
        assert(e.ms > 0 && e.ms <= truth[i].us / 1000 + 0.0005, `${e.ms} vs ${truth[i].us}`);
      }
    });

    await t.step("libbpf-tools gethostlatency -p: the same eight lookups", () => {
      const lines = out.ref.stdout.split("\n").filter((l) => l.split(/\s+/)[1] === String(W));
      assertEquals(lines.length, 8, out.ref.stdout);
      // It copies the name at entry: a page not yet touched reads as "" there.
      for (const l of lines) assert(/ (localhost)?$/.test(l), l);
      for (const [i, l] of lines.entries()) {
        assert(Number(l.split(/\s+/)[3]) <= truth[i].us / 1000 + 0.0005, l);
      }
    });
    await assertNoneLoaded();
  },
  { commands: ["gcc", REFERENCE] },
);

kernelTest("gethostlatency: SIGINT exits 0 and leaves nothing loaded", async () => {
  const tool = new ToolProcess("gethostlatency", []);
  await tool.waitForOutput(/HOST/);
  await waitForPrograms("gethostlat_r2", 1);
  assertEquals((await tool.stop("SIGINT")).code, 0);
  await assertNoneLoaded();
});

kernelTest("gethostlatency -l FILE without the functions: one line, exit 1", async () => {
  const { code, stderr } = await runToolOnce("gethostlatency", ["-l", "/etc/passwd"]);
  assertEquals(code, 1, stderr);
  assertEquals(stderr.trim(), "gethostlatency: /etc/passwd: not an ELF file");
});

for (const args of [["-l", "/nonexistent"], ["-p", "0"], ["-p", "x"], ["extra"]]) {
  Deno.test(`gethostlatency ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("gethostlatency", args);
    assertEquals(code, 2, stderr);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(stderr.startsWith("gethostlatency: "), stderr);
  });
}
