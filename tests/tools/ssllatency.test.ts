/**
 * ssllatency against a workload whose truth is known: openssl s_server on a
 * local port, and a Python client that makes 3 TLS handshakes to it
 * (SSL_do_handshake), timing each itself. In the same window: our -p run,
 * our --json -p run, and the bpftrace tool ssllatency.bt (system wide; it
 * names functions by address here).
 */
import { deepEqual, equal as assertEquals, ok as assert } from "node:assert/strict";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { PausedWorkload, waitForPrograms } from "../support/event_tools.ts";
import { runOk, Spawned } from "../support/process.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";

const N = 3;
const BT = "/usr/sbin/ssllatency.bt";

const CLIENT_PY = `
import socket, ssl, sys, time
port = int(sys.argv[1]); sys.stdin.readline()
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
for i in range(${N}):
    s = socket.create_connection(("127.0.0.1", port))
    t0 = time.monotonic(); c = ctx.wrap_socket(s); t1 = time.monotonic()
    print("%.1f" % ((t1 - t0) * 1e6), flush=True)
    c.close()
print("done", flush=True)
sys.stdin.read()
`;

async function assertNoneLoaded(): Promise<void> {
  await waitFor(
    async () => !(await loadedProgramNames()).some((n) => n.startsWith("ssllat_")),
    10_000,
    "ssllatency to unload",
  );
}

/** lhist(0, 1000, 200) bucket of a latency in µs: 1 + us/200, 6 from 1000 on. */
function bucketOf(us: number): number {
  return us >= 1000 ? 6 : 1 + Math.floor(us / 200);
}

kernelTest(
  "ssllatency: 3 TLS handshakes in SSL_do_handshake's histogram, as ssllatency.bt",
  async (t) => {
    const dir = Deno.makeTempDirSync({ prefix: "ssllatency-test-" });
    await runOk("openssl", [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-subj",
      "/CN=localhost",
      "-days",
      "1",
      "-keyout",
      `${dir}/k.pem`,
      "-out",
      `${dir}/c.pem`,
    ]);
    Deno.writeTextFileSync(`${dir}/cl.py`, CLIENT_PY);
    const port = String(20000 + Math.floor(Math.random() * 20000));
    const server = new Spawned("openssl", [
      "s_server",
      "-accept",
      `127.0.0.1:${port}`,
      "-cert",
      `${dir}/c.pem`,
      "-key",
      `${dir}/k.pem`,
      "-www",
      "-quiet",
    ]);
    const client = new PausedWorkload("python3", [`${dir}/cl.py`, port]);
    const W = String(client.pid);
    const text = new ToolProcess("ssllatency", ["-p", W]);
    const json = new ToolProcess("ssllatency", ["--json", "-p", W]);
    const bt = new Spawned("bpftrace", [BT]);
    const out: Record<string, { code: number; stdout: string; stderr: string }> = {};
    try {
      await text.waitForOutput(/Hit Ctrl-C to end/, 30_000);
      await bt.waitForOutput(/Hit Ctrl-C to end/, 30_000);
      await waitForPrograms("ssllat_r0", 2);
      await client.write("go\n");
      await client.waitForOutput(/done/, 30_000);
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      out.text = await text.stop();
      out.json = await json.stop();
      out.bt = await bt.stop();
      await client.closeStdin();
      out.client = await client.wait();
      await server.stop("SIGTERM");
      Deno.removeSync(dir, { recursive: true });
    }
    for (const name of ["text", "json", "bt", "client"]) {
      assertEquals(out[name].code, 0, `${name}: ${out[name].stderr}`);
    }
    const measuredUs = out.client.stdout.trim().split("\n").filter((l) => l !== "done").map(Number);
    assertEquals(measuredUs.length, N);

    await t.step("-p: @stat count 3, total within the client's measures", () => {
      const m = out.text.stdout.match(
        /^@stat\[SSL_do_handshake\]: count (\d+), average (\d+), total (\d+)$/m,
      );
      assert(m, out.text.stdout);
      assertEquals(Number(m[1]), N);
      const total = Number(m[3]);
      assert(total > 0 && total <= measuredUs.reduce((a, b) => a + b, 0) + N, out.text.stdout);
      assertEquals(Number(m[2]), Math.floor(total / N));
      assert(out.text.stdout.includes("\nLatency distribution in microsecond:\n"));
      assert(/^@hist\[SSL_do_handshake\]: $/m.test(out.text.stdout), out.text.stdout);
      assert(!/@histF\[SSL_do_handshake\]/.test(out.text.stdout), out.text.stdout);
    });

    await t.step("--json: the three calls in buckets no higher than the client's measures", () => {
      const [report] = out.json.stdout.trim().split("\n").map((l) => JSON.parse(l));
      const hs = report.functions.filter((f: { func: string }) => f.func === "SSL_do_handshake");
      assertEquals(hs.length, 1);
      assertEquals(hs[0].count, N);
      assertEquals(hs[0].failed, false);
      const ours = hs[0].buckets.map((b: { low: number | null }) =>
        b.low === null ? 0 : bucketOf(b.low)
      );
      const highest = Math.max(...measuredUs.map(bucketOf));
      assert(ours.every((b: number) => b <= highest), JSON.stringify(hs[0]));
      deepEqual(
        hs[0].buckets.reduce((a: number, b: { count: number }) => a + b.count, 0),
        N,
      );
    });

    await t.step("ssllatency.bt: the same three handshakes, total within 20% of ours", () => {
      // It keys by the function's address here; the handshake is the key with our count.
      const stats = [
        ...out.bt.stdout.matchAll(/^@stat\[(.+)\]: count (\d+), average \d+, total (\d+)$/gm),
      ];
      const ours = Number(
        out.text.stdout.match(/^@stat\[SSL_do_handshake\]: .* total (\d+)$/m)![1],
      );
      const theirs = stats.filter((m) => Number(m[2]) === N);
      assert(theirs.length >= 1, out.bt.stdout);
      assert(theirs.some((m) => Math.abs(Number(m[3]) - ours) <= 0.2 * ours), out.bt.stdout);
    });
    await assertNoneLoaded();
  },
  { commands: ["openssl", "python3", "bpftrace"] },
);

kernelTest("ssllatency: SIGINT exits 0 and leaves nothing loaded", async () => {
  const tool = new ToolProcess("ssllatency", []);
  await tool.waitForOutput(/Hit Ctrl-C/, 30_000);
  await waitForPrograms("ssllat_r0", 1);
  assertEquals((await tool.stop("SIGINT")).code, 0);
  await assertNoneLoaded();
});

for (const args of [["--libssl", "/nonexistent"], ["-p", "x"], ["0"]]) {
  Deno.test(`ssllatency ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("ssllatency", args);
    assertEquals(code, 2, stderr);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(stderr.startsWith("ssllatency: "), stderr);
  });
}
