/**
 * tcptop against traffic whose bytes are known, in a private network
 * namespace: one process, one IPv4 and one IPv6 connection; on each, the
 * client sends UP bytes and the server DOWN bytes back (send/recv loops:
 * the sums of what the calls returned are exactly UP and DOWN). Each end is
 * one row: the client's TX_KB = floor(UP/1024), RX_KB = floor(DOWN/1024),
 * the server's the other way round; --json's exact bytes, summed over its
 * one-second intervals, are UP and DOWN to the byte. Other processes'
 * traffic may show up: rows are picked out by PID and ports, and filters
 * are checked on every row.
 *
 * No reference runs here: libbpf-tools tcptop needs kprobes on tcp_sendmsg
 * and tcp_cleanup_rbuf ("failed to create kprobe 'tcp_sendmsg+0x0'").
 */
import { deepEqual, equal as assertEquals, ok as assert } from "node:assert/strict";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { PausedWorkload, waitForPrograms } from "../support/event_tools.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";
import { listenerPorts } from "./tcplife_workload.ts";

const UP = 300 * 1024 + 11;
const DOWN = 100 * 1024 + 5;

const WORKLOAD = String.raw`
import fcntl, json, socket, struct, sys, threading
port, up, down = map(int, sys.argv[1:4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a new namespace's lo is down
flags = struct.unpack("16sh", fcntl.ioctl(s, 0x8913, struct.pack("16sh", b"lo", 0)))[1]
fcntl.ioctl(s, 0x8914, struct.pack("16sh", b"lo", flags | 1))
s.close()
sys.stdin.readline()
def receive(sock, n):
    got = 0
    while got < n:
        d = sock.recv(65536)
        assert d
        got += len(d)
out = []
for family, host, p in ((socket.AF_INET, "127.0.0.1", port), (socket.AF_INET6, "::1", port + 1)):
    ls = socket.socket(family); ls.bind((host, p)); ls.listen(1)
    c = socket.create_connection((host, p)); a, _ = ls.accept()
    t = threading.Thread(target=receive, args=(a, up)); t.start()
    c.sendall(b"u" * up); t.join()
    a.sendall(b"d" * down); receive(c, down)
    out.append({"ip": 4 if family == socket.AF_INET else 6, "server": p,
                "client": c.getsockname()[1]})
    c.close(); a.close(); ls.close()
print(json.dumps(out))
`;

/** One row of the table. */
interface Row {
  pid: number;
  comm: string;
  local: string;
  remote: string;
  rx: number;
  tx: number;
}

/** Every row of every report, with the header lines checked. */
function parseText(stdout: string, summary = true): Row[] {
  const rows: Row[] = [];
  const lines = stdout.split("\n").filter((l) => l !== "");
  if (summary) {
    assert(/^\d\d:\d\d:\d\d loadavg: [\d.]+ [\d.]+ [\d.]+ \d+\/\d+ \d+$/.test(lines[0]), lines[0]);
  } else assert(lines[0].startsWith("PID "), lines[0]);
  for (const l of lines) {
    if (/loadavg:/.test(l) || l.startsWith("PID ")) {
      if (l.startsWith("PID ")) assert(/^PID +COMM +LADDR6? +RADDR6? +RX_KB {2}TX_KB$/.test(l), l);
      continue;
    }
    const [pid, comm, local, remote, rx, tx] = l.trim().split(/\s+/);
    rows.push({ pid: Number(pid), comm, local, remote, rx: Number(rx), tx: Number(tx) });
  }
  return rows;
}

interface Flow {
  ip: 4 | 6;
  server: number;
  client: number;
}

/** The two rows of a flow, as the table must show them. */
function flowRows(f: Flow, pid: number): Row[] {
  const host = f.ip === 4 ? "127.0.0.1" : "::1";
  const up = Math.floor(UP / 1024), down = Math.floor(DOWN / 1024);
  return [
    {
      pid,
      comm: "python3",
      local: `${host}:${f.client}`,
      remote: `${host}:${f.server}`,
      rx: down,
      tx: up,
    },
    {
      pid,
      comm: "python3",
      local: `${host}:${f.server}`,
      remote: `${host}:${f.client}`,
      rx: up,
      tx: down,
    },
  ];
}

const sortRows = (rows: Row[]) => [...rows].sort((a, b) => a.local.localeCompare(b.local));

async function ourPrograms(): Promise<string[]> {
  return (await loadedProgramNames()).filter((n) => n.startsWith("tcptop_"));
}

kernelTest("tcptop: each end of each connection, with the bytes it sent and received", async () => {
  assertEquals((await ourPrograms()).length, 0, "tcptop programs loaded before the test");
  const port = listenerPorts().port4;
  const workload = new PausedWorkload("unshare", [
    "-n",
    "python3",
    "-c",
    WORKLOAD,
    ...[port, UP, DOWN].map(String),
  ]);
  const pid = workload.pid;
  const runs = [
    ["-C", "60"],
    ["--json", "1"],
    ["-C", "-S", "-p", String(pid), "60"],
    ["-C", "-4", "60"],
    ["-C", "-6", "60"],
    ["-C", "-p", String(pid), "-s", "received", "-r", "1", "60"],
  ];
  const tools = runs.map((args) => new ToolProcess("tcptop", args));
  await waitForPrograms("tcptop_recv", tools.length, 45_000);
  const run = await workload.run();
  assertEquals(run.code, 0, run.stderr);
  const flows = JSON.parse(run.stdout) as Flow[];
  await new Promise((r) => setTimeout(r, 1500)); // the --json run's last interval
  for (const t of tools) t.kill("SIGINT");
  const results = await Promise.all(tools.map((t) => t.finish()));
  for (const r of results) assertEquals(r.code, 0, r.stderr);
  const [text, json, byPid, only4, only6, top] = results.map((r) => r.stdout);
  const all = flows.flatMap((f) => flowRows(f, pid));
  const mine = (rows: Row[]) => rows.filter((r) => r.pid === pid);

  deepEqual(sortRows(mine(parseText(text))), sortRows(all), "text");
  const byPidRows = parseText(byPid, false);
  assert(byPidRows.every((r) => r.pid === pid), "-p: only the process");
  deepEqual(sortRows(byPidRows), sortRows(all), "-p -S");
  const rows4 = parseText(only4), rows6 = parseText(only6);
  assert(rows4.every((r) => !r.local.includes("::")), "-4");
  assert(rows6.every((r) => r.local.startsWith("::") || r.local.split(":").length > 2), "-6");
  deepEqual(sortRows(mine(rows4)), sortRows(flowRows(flows[0], pid)), "-4");
  deepEqual(sortRows(mine(rows6)), sortRows(flowRows(flows[1], pid)), "-6");
  // -s received -r 1: IPv4 rows come first, the biggest receiver among them: the v4 server
  deepEqual(parseText(top), [flowRows(flows[0], pid)[1]], "-s received -r 1");

  // --json: exact bytes per end, summed over the intervals
  const totals = new Map<string, { rx: number; tx: number }>();
  for (const line of json.trim().split("\n")) {
    for (const c of JSON.parse(line).connections) {
      if (c.pid !== pid) continue;
      const key = `${c.laddr}:${c.lport}`;
      const t = totals.get(key) ?? { rx: 0, tx: 0 };
      totals.set(key, { rx: t.rx + c.rx_bytes, tx: t.tx + c.tx_bytes });
    }
  }
  for (const f of flows) {
    const host = f.ip === 4 ? "127.0.0.1" : "::1";
    deepEqual(totals.get(`${host}:${f.client}`), { rx: DOWN, tx: UP }, `--json client IPv${f.ip}`);
    deepEqual(totals.get(`${host}:${f.server}`), { rx: UP, tx: DOWN }, `--json server IPv${f.ip}`);
  }
  await waitFor(async () => (await ourPrograms()).length === 0, 3000, "tcptop to unload");
});

for (
  const [args, pattern] of [
    [["-x"], /^tcptop: unknown option '-x'/],
    [["-4", "-6"], /^tcptop: -4 and -6 cannot be used together/],
    [["-s", "time"], /^tcptop: invalid -s 'time': one of all, sent, received/],
    [["-r", "0"], /^tcptop: invalid ROWS '0': must be at least 1/],
    [["0"], /^tcptop: invalid interval '0'/],
    [["1", "2", "3"], /^tcptop: unrecognized positional argument: '3'/],
  ] as [string[], RegExp][]
) {
  Deno.test(`tcptop ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("tcptop", args);
    assertEquals(code, 2);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(pattern.test(stderr), stderr);
  });
}

Deno.test("tcptop --help: USAGE and EXAMPLES under 80 columns, exit 0", async () => {
  const { code, stdout } = await runToolOnce("tcptop", ["-h"]);
  assertEquals(code, 0);
  assert(/^USAGE: tcptop /m.test(stdout), stdout);
  assert(/^EXAMPLES:/m.test(stdout), stdout);
  assert(stdout.split("\n").every((l) => l.length < 80));
});
