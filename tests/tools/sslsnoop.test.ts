/**
 * sslsnoop against a workload whose truth is known: openssl s_server on a
 * local port with a throwaway certificate, and a Python client that makes
 * 3 TLS handshakes to it (ssl.wrap_socket: SSL_do_handshake), timing each
 * itself. In the same window: our -p run, our --json run (every process),
 * and the bpftrace tool sslsnoop.bt.
 */
import { deepEqual, equal as assertEquals, ok as assert } from "node:assert/strict";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { PausedWorkload, waitForPrograms } from "../support/event_tools.ts";
import { runOk, Spawned } from "../support/process.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";

const N = 3;
const BT = "/usr/sbin/sslsnoop.bt";

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
    async () => !(await loadedProgramNames()).some((n) => n.startsWith("sslsnoop_")),
    10_000,
    "sslsnoop to unload",
  );
}

kernelTest(
  "sslsnoop: 3 TLS handshakes -> 3 SSL_do_handshake lines, as sslsnoop.bt",
  async (t) => {
    const dir = Deno.makeTempDirSync({ prefix: "sslsnoop-test-" });
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
    const text = new ToolProcess("sslsnoop", ["-p", W]);
    const json = new ToolProcess("sslsnoop", ["--json"]);
    const bt = new Spawned("bpftrace", [BT]);
    const out: Record<string, { code: number; stdout: string; stderr: string }> = {};
    try {
      await text.waitForOutput(/FUNC\n/, 30_000);
      await bt.waitForOutput(/FUNC/, 30_000);
      await waitForPrograms("sslsnoop_r0", 2);
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

    await t.step("-p: three SSL_do_handshake lines, RET 1, LAT within the client's measure", () => {
      const lines = out.text.stdout.split("\n");
      assertEquals(lines[0], "Tracing SSL/TLS handshake... Hit Ctrl-C to end.");
      assertEquals(lines[1], "TIME(us)   TID      COMM     LAT(us)   RET FUNC");
      const hs = lines.filter((l) => l.endsWith(" SSL_do_handshake"));
      assertEquals(hs.length, N, out.text.stdout);
      for (const [i, l] of hs.entries()) {
        const f = l.trim().split(/\s+/);
        deepEqual([f[1], f[2], f[4]], [W, "python3", "1"]);
        assert(Number(f[3]) > 0 && Number(f[3]) <= measuredUs[i] + 1, `${l} vs ${measuredUs[i]}`);
      }
    });

    await t.step("--json: the same three handshakes of the client", () => {
      const events = out.json.stdout.trim().split("\n").map((l) => JSON.parse(l))
        .filter((e) => e.tid === Number(W) && e.func === "SSL_do_handshake");
      assertEquals(events.length, N);
      assert(events.every((e) => e.ret === 1 && e.comm === "python3"));
    });

    await t.step("sslsnoop.bt: the same three handshake lines", () => {
      const theirs = out.bt.stdout.split("\n").filter((l) => {
        const f = l.trim().split(/\s+/);
        return f[1] === W && f[5] === "SSL_do_handshake";
      });
      assertEquals(theirs.length, N, out.bt.stdout);
      assert(theirs.every((l) => l.trim().split(/\s+/)[4] === "1"));
    });
    await assertNoneLoaded();
  },
  { commands: ["openssl", "python3", "bpftrace"] },
);

kernelTest("sslsnoop: SIGINT exits 0 and leaves nothing loaded", async () => {
  const tool = new ToolProcess("sslsnoop", []);
  await tool.waitForOutput(/FUNC/, 30_000);
  await waitForPrograms("sslsnoop_r0", 1);
  assertEquals((await tool.stop("SIGINT")).code, 0);
  await assertNoneLoaded();
});

for (const args of [["--libssl", "/nonexistent"], ["-p", "x"], ["extra"]]) {
  Deno.test(`sslsnoop ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("sslsnoop", args);
    assertEquals(code, 2, stderr);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(stderr.startsWith("sslsnoop: "), stderr);
  });
}
