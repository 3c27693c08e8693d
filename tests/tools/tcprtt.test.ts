/**
 * tcprtt against a workload whose sample count the kernel itself counts,
 * in a private network namespace: over IPv4 and IPv6, a client and a
 * server exchange N one-byte ping-pongs (TCP_NODELAY), and the client
 * reads its own TCP_INFO (tcpi_segs_in, tcpi_rtt) before closing. Every
 * segment the client receives while established is one sample, so a run
 * filtered on the server's port (-P: only the client's socket) counts
 * exactly segs_in - 1 (the SYN-ACK arrives in SYN_SENT, and the client's
 * close makes it leave ESTABLISHED before the server's FIN comes). The
 * loopback RTT is far under 100 ms; -e's average is checked against that.
 * Address filters (-a/-A) and -b/-B keep or split the two families.
 *
 * No reference runs here: libbpf-tools tcprtt needs fentry or a kprobe on
 * tcp_rcv_established ("failed to create kprobe 'tcp_rcv_established+0x0'").
 */
import { deepEqual, equal as assertEquals, ok as assert } from "node:assert/strict";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { PausedWorkload, waitForPrograms } from "../support/event_tools.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";
import { listenerPorts } from "./tcplife_workload.ts";

const N = 100;

const WORKLOAD = String.raw`
import fcntl, json, socket, struct, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a new namespace's lo is down
flags = struct.unpack("16sh", fcntl.ioctl(s, 0x8913, struct.pack("16sh", b"lo", 0)))[1]
fcntl.ioctl(s, 0x8914, struct.pack("16sh", b"lo", flags | 1))
s.close()
sys.stdin.readline()
out = []
for family, host, p in ((socket.AF_INET, "127.0.0.1", port), (socket.AF_INET6, "::1", port + 1)):
    ls = socket.socket(family); ls.bind((host, p)); ls.listen(1)
    c = socket.socket(family); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c.connect((host, p))
    a, _ = ls.accept(); a.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for _ in range(n):
        c.send(b"x"); a.recv(1); a.send(b"y"); c.recv(1)
    info = c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    # struct tcp_info: tcpi_rtt at 68, tcpi_segs_in at 140
    out.append({"ip": 4 if family == socket.AF_INET else 6, "port": p,
                "rtt": struct.unpack_from("I", info, 68)[0],
                "segs_in": struct.unpack_from("I", info, 140)[0]})
    c.close(); a.close(); ls.close()
print(json.dumps(out))
`;

/** One histogram of a report: its heading and its counts by slot. */
interface Hist {
  heading: string;
  unit: string;
  counts: number[];
}

/** libbpf-tools' report: headings, each followed by a log2 table. */
function parseReport(stdout: string, banner = "Tracing TCP RTT... Hit Ctrl-C to end."): Hist[] {
  const lines = stdout.split("\n");
  assertEquals(lines[0], banner);
  const hists: Hist[] = [];
  for (const l of lines.slice(1)) {
    const unit = l.match(/^\s+(usecs|msecs)\s+: count\s+distribution$/);
    if (unit) {
      hists.at(-1)!.unit = unit[1];
      continue;
    }
    const row = l.match(/^\s+(\d+) -> (\d+)\s+: (\d+)\s+\|/);
    if (row) {
      hists.at(-1)!.counts.push(Number(row[3]));
      continue;
    }
    if (l.trim() !== "") hists.push({ heading: l, unit: "", counts: [] });
  }
  return hists;
}

const total = (h: Hist) => h.counts.reduce((a, b) => a + b, 0);

async function ourPrograms(): Promise<string[]> {
  return (await loadedProgramNames()).filter((n) => n.startsWith("tcprtt_"));
}

kernelTest("tcprtt: one sample per segment the client receives, loopback RTTs", async () => {
  assertEquals((await ourPrograms()).length, 0, "tcprtt programs loaded before the test");
  const port = listenerPorts().port4;
  const runs = [
    ["-P", String(port), "-e"],
    ["-P", String(port + 1), "-m", "-T"],
    ["-A", "127.0.0.1", "-P", String(port)],
    ["-a", "::1", "-P", String(port + 1)],
    ["-a", "127.0.0.1", "-P", String(port + 1)],
    ["-b", "--json"],
    ["-B", "-e", "-P", String(port)],
  ];
  const tools = runs.map((args) => new ToolProcess("tcprtt", args));
  await waitForPrograms("tcprtt_probe", tools.length, 45_000);
  const workload = new PausedWorkload("unshare", [
    "-n",
    "python3",
    "-c",
    WORKLOAD,
    String(port),
    String(N),
  ]);
  const run = await workload.run();
  assertEquals(run.code, 0, run.stderr);
  const [v4, v6] = JSON.parse(run.stdout) as { rtt: number; segs_in: number }[];
  assert(v4.segs_in > N && v6.segs_in > N, run.stdout);
  for (const t of tools) t.kill("SIGINT");
  const results = await Promise.all(tools.map((t) => t.finish()));
  for (const r of results) assertEquals(r.code, 0, r.stderr);
  const [client4, client6ms, byRaddr4, byLaddr6, wrongFamily, byLaddrJson, splitRemote] = results
    .map((r) => r.stdout);

  const [h4] = parseReport(client4);
  const avg = Number(h4.heading.match(/^All Addresses = \*{6} \[AVG (\d+)\]$/)?.[1]);
  assertEquals(total(h4), v4.segs_in - 1, `IPv4: one sample per segment received\n${client4}`);
  assertEquals(h4.unit, "usecs");
  assert(avg >= 0 && avg < 100_000, `IPv4 average ${avg} us (TCP_INFO rtt ${v4.rtt})`);

  const timed = client6ms.split("\n");
  assert(/^\d\d:\d\d:\d\d {0}$/.test(timed[2]), `-T: the time before the report\n${client6ms}`);
  const [h6] = parseReport(timed.filter((_, i) => i !== 2).join("\n"));
  assertEquals(h6.heading, "All Addresses = ****** ");
  assertEquals(h6.unit, "msecs");
  assertEquals(total(h6), v6.segs_in - 1, "IPv6 -m: one sample per segment received");

  assertEquals(total(parseReport(byRaddr4)[0]), v4.segs_in - 1, "-A 127.0.0.1");
  assertEquals(total(parseReport(byLaddr6)[0]), v6.segs_in - 1, "-a ::1");
  deepEqual(parseReport(wrongFamily), [], "-a 127.0.0.1 on the IPv6 port: nothing");

  const report = JSON.parse(byLaddrJson.trim().split("\n")[0]);
  const laddrs = report.histograms.map((h: { laddr: string }) => h.laddr);
  assert(laddrs.includes("127.0.0.1") && laddrs.includes("::1"), byLaddrJson);
  const remote = parseReport(splitRemote);
  assertEquals(remote.length, 1, splitRemote);
  assert(/^Remote Address = 127\.0\.0\.1 \[AVG \d+\]$/.test(remote[0].heading), splitRemote);
  assertEquals(total(remote[0]), v4.segs_in - 1, "-B");
  await waitFor(async () => (await ourPrograms()).length === 0, 3000, "tcprtt to unload");
});

kernelTest("tcprtt -d 1: one report after a second, then exit", async () => {
  const { code, stdout, stderr } = await runToolOnce("tcprtt", ["-d", "1"]);
  assertEquals(code, 0, stderr);
  assertEquals(stdout.split("\n")[0], "Tracing TCP RTT for 1 secs.");
});

for (
  const [args, pattern] of [
    [["-x"], /^tcprtt: unknown option '-x'/],
    [["-p", "0"], /^tcprtt: invalid port '0': must be at least 1/],
    [["-a", "1.2.3"], /^tcprtt: invalid address '1.2.3' in -a/],
    [["-A", "::1::2"], /^tcprtt: invalid address '::1::2' in -A/],
    [["-a", "::1", "-A", "1.2.3.4"], /^tcprtt: It is not permitted to filter by both IPv4/],
    [["-b", "-B"], /^tcprtt: -b and -B cannot be used together/],
    [["-i", "0"], /^tcprtt: invalid -i '0'/],
    [["1"], /^tcprtt: unrecognized positional argument: '1'/],
  ] as [string[], RegExp][]
) {
  Deno.test(`tcprtt ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("tcprtt", args);
    assertEquals(code, 2);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(pattern.test(stderr), stderr);
  });
}

Deno.test("tcprtt --help: USAGE and EXAMPLES under 80 columns, exit 0", async () => {
  const { code, stdout } = await runToolOnce("tcprtt", ["-h"]);
  assertEquals(code, 0);
  assert(/^USAGE: tcprtt /m.test(stdout), stdout);
  assert(/^EXAMPLES:/m.test(stdout), stdout);
  assert(stdout.split("\n").every((l) => l.length < 80));
});
