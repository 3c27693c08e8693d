/**
 * tcpretrans against retransmissions whose number the kernel itself
 * counts, in a private network namespace (its /proc/net/snmp RetransSegs
 * and /proc/net/netstat TCPRetransFail are the namespace's own):
 *
 * - SYNs: three clients connect to three listeners whose accept queues are
 *   full (listen(0) and a connection nobody accepts yet), so each SYN is
 *   dropped; the queues are emptied after 1.5 s, so each client's SYN is
 *   retransmitted twice (after the initial RTO of 1 s, then 2 s later, when
 *   it is answered). RetransSegs grows by exactly 6: six lines in SYN_SENT,
 *   two per client, and -c counts 2 per flow.
 * - data: 300 KB through a token bucket (tc tbf) on the namespace's
 *   loopback, which drops part of every burst: the retransmissions TCP
 *   makes are shown in ESTABLISHED (or FIN_WAIT1 once the sender has closed);
 *   those the device refused (err in --json) carry exactly the segments
 *   TCPRetransFail counts.
 *
 * No reference runs here: bcc's tcpretrans is Python (no kernel headers
 * here) and tcpretrans.bt needs a kprobe on tcp_retransmit_skb.
 */
import { deepEqual, equal as assertEquals, ok as assert } from "node:assert/strict";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { lostInStderr, PausedWorkload, waitForPrograms } from "../support/event_tools.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";

const WORKLOAD = String.raw`
import json, socket, sys, threading, time
def counters():
    out = {}
    for path in ("/proc/net/snmp", "/proc/net/netstat"):
        rows = [l.split() for l in open(path)]
        for head, vals in zip(rows[0::2], rows[1::2]):
            out.update({head[0] + k: int(v) for k, v in zip(head[1:], vals[1:])})
    return out["Tcp:RetransSegs"], out["TcpExt:TCPRetransFail"]

listeners, fillers = [], []
for _ in range(3):
    l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(0)
    fillers.append(socket.create_connection(l.getsockname()))  # fills the accept queue
    listeners.append(l)
sink = socket.socket(); sink.bind(("127.0.0.1", 0)); sink.listen(4)
sys.stdin.readline()

# SYN retransmissions
before = counters()
def empty_queues():
    for l in listeners:
        l.accept()[0].close()
threading.Timer(1.5, empty_queues).start()
clients = [socket.socket() for _ in listeners]
threads = [threading.Thread(target=c.connect, args=(l.getsockname(),))
           for c, l in zip(clients, listeners)]
for t in threads: t.start()
for t in threads: t.join()
after = counters()
print(json.dumps({"part": "syn", "retrans": after[0] - before[0], "fail": after[1] - before[1],
                  "flows": [[c.getsockname()[1], l.getsockname()[1]] for c, l in zip(clients, listeners)]}),
      flush=True)

# data retransmissions through the token bucket
before = counters()
received = []
def serve():
    a, _ = sink.accept(); n = 0
    while True:
        d = a.recv(65536)
        if not d: break
        n += len(d)
    received.append(n); a.close()
t = threading.Thread(target=serve); t.start()
c = socket.create_connection(sink.getsockname())
c.sendall(b"x" * 300000); c.shutdown(socket.SHUT_WR); t.join()
after = counters()
assert received == [300000], received
print(json.dumps({"part": "data", "retrans": after[0] - before[0], "fail": after[1] - before[1],
                  "flows": [[c.getsockname()[1], sink.getsockname()[1]]]}), flush=True)
c.close()
`;

/** The loopback of a new namespace, up, with a 1500-byte MTU and a token bucket that drops. */
const SETUP = "ip link set lo up mtu 1500 && " +
  'tc qdisc add dev lo root tbf rate 10mbit burst 20k limit 30k && exec python3 -c "$0"';

/** What the workload saw: the kernel's counts and the flows [client port, server port]. */
interface Part {
  part: "syn" | "data";
  retrans: number;
  fail: number;
  flows: [number, number][];
}

/** One tcpretrans line. */
interface Line {
  time?: string;
  pid: number;
  ip: number;
  laddr: string;
  lport: number;
  type: string;
  raddr: string;
  rport: number;
  state: string;
  seq?: number;
  segs?: number;
  err?: number;
}

const HEADER = "TIME     PID     IP LADDR:LPORT          T> RADDR:RPORT          STATE";

/** TIME PID IP LADDR:LPORT T> RADDR:RPORT STATE [SEQ]. */
function parseText(stdout: string, sequence = false): Line[] {
  const lines = stdout.split("\n").filter((l) => l !== "");
  assertEquals(lines[0], "Tracing retransmits ... Hit Ctrl-C to end");
  assertEquals(lines[1], sequence ? HEADER + "        SEQ" : HEADER);
  return lines.slice(2).map((l) => {
    const [time, pid, ip, local, arrow, remote, state, seq] = l.trim().split(/\s+/);
    const split = (ep: string) =>
      [ep.slice(0, ep.lastIndexOf(":")), Number(ep.slice(ep.lastIndexOf(":") + 1))] as const;
    const [laddr, lport] = split(local), [raddr, rport] = split(remote);
    return {
      time,
      pid: Number(pid),
      ip: Number(ip),
      laddr,
      lport,
      type: arrow.slice(0, -1),
      raddr,
      rport,
      state,
      seq: sequence ? Number(seq) : undefined,
    };
  });
}

/** Lines of a flow, from its client's side (the one that retransmits). */
function ofFlow(lines: Line[], [client, server]: [number, number]): Line[] {
  return lines.filter((l) => l.lport === client && l.rport === server);
}

async function ourPrograms(): Promise<string[]> {
  return (await loadedProgramNames()).filter((n) => n.startsWith("tcpretrans_"));
}

kernelTest("tcpretrans: the retransmissions the kernel counts, each once", async () => {
  assertEquals((await ourPrograms()).length, 0, "tcpretrans programs loaded before the test");
  const runs = [[], ["--json"], ["-s"], ["-c"], ["-6"]];
  const tools = runs.map((args) => new ToolProcess("tcpretrans", args));
  await waitForPrograms("tcpretrans_rt", tools.length);
  const workload = new PausedWorkload("unshare", ["-n", "sh", "-c", SETUP, WORKLOAD]);
  const run = await workload.run();
  assertEquals(run.code, 0, run.stderr);
  const [syn, data] = run.stdout.trim().split("\n").map((l) => JSON.parse(l) as Part);
  assertEquals(syn.retrans, 6, "the kernel counted two SYN retransmissions per client");
  assertEquals(syn.fail, 0);
  assert(data.retrans > 0, `the token bucket made TCP retransmit (${JSON.stringify(data)})`);
  await new Promise((r) => setTimeout(r, 500));
  for (const t of tools) t.kill("SIGINT");
  const results = await Promise.all(tools.map((t) => t.finish()));
  for (const r of results) {
    assertEquals(r.code, 0, r.stderr);
    assertEquals(lostInStderr(r.stderr), 0, r.stderr);
  }
  const [text, json, withSeq, counted, only6] = results.map((r) => r.stdout);

  const lines = parseText(text);
  for (const flow of syn.flows) {
    deepEqual(
      ofFlow(lines, flow).map((l) => ({ ...l, time: undefined, pid: 0 })),
      [0, 1].map(() => ({
        time: undefined,
        pid: 0,
        ip: 4,
        laddr: "127.0.0.1",
        lport: flow[0],
        type: "R",
        raddr: "127.0.0.1",
        rport: flow[1],
        state: "SYN_SENT",
        seq: undefined,
      })),
      `SYN retransmissions of ${flow}\n${text}`,
    );
  }
  assert(lines.every((l) => /^\d\d:\d\d:\d\d$/.test(l.time!)), text);
  const dataLines = ofFlow(lines, data.flows[0]);
  assert(dataLines.length > 0, "data retransmissions shown");
  assert(
    dataLines.every((l) => l.state === "ESTABLISHED" || l.state === "FIN_WAIT1"),
    dataLines.map((l) => l.state).join(" "),
  );

  const jsonLines: Line[] = json.trim().split("\n").map((l) => JSON.parse(l));
  for (const flow of syn.flows) {
    const mine = ofFlow(jsonLines, flow);
    assertEquals(mine.length, 2, `--json: ${flow}`);
    assert(mine.every((l) => l.err === 0 && l.segs === 1 && l.state === "SYN_SENT"), "--json SYN");
  }
  const dataJson = ofFlow(jsonLines, data.flows[0]);
  assertEquals(dataJson.length, dataLines.length, "--json: the same data retransmissions");
  assertEquals(
    dataJson.filter((l) => l.err !== 0).reduce((sum, l) => sum + l.segs!, 0),
    data.fail,
    "--json: the refused attempts carry the segments TCPRetransFail counts",
  );

  // -s: the SYN's sequence number, the same in both attempts of a flow
  const seqLines = parseText(withSeq, true);
  for (const flow of syn.flows) {
    const mine = ofFlow(seqLines, flow);
    assertEquals(mine.length, 2);
    assert(mine[0].seq === mine[1].seq && Number.isInteger(mine[0].seq), "-s: one SYN, one seq");
  }

  // -c: bcc's table at the end
  const rows = counted.split("\n");
  deepEqual(rows.slice(0, 3), [
    "Tracing retransmits ... Hit Ctrl-C to end",
    "",
    `${"LADDR:LPORT".padEnd(25)} ${"RADDR:RPORT".padEnd(25)} RETRANSMITS`,
  ]);
  for (const [client, server] of syn.flows) {
    const row = `${`127.0.0.1:${client}`.padEnd(25)} ${`127.0.0.1:${server}`.padEnd(25)} 2`;
    assertEquals(rows.filter((r) => r === row).length, 1, `-c: ${row}\n${counted}`);
  }
  const [client, server] = data.flows[0];
  const dataRow = rows.find((r) => r.startsWith(`127.0.0.1:${client} `));
  assert(dataRow?.includes(`127.0.0.1:${server} `), counted);
  assertEquals(Number(dataRow!.trim().split(/\s+/).at(-1)), dataLines.length, "-c: data flow");

  assertEquals(parseText(only6).filter((l) => l.ip !== 6).length, 0, "-6: IPv6 only");
  await waitFor(async () => (await ourPrograms()).length === 0, 3000, "tcpretrans to unload");
}, { commands: ["tc"] });

for (
  const [args, pattern] of [
    [["-x"], /^tcpretrans: unknown option '-x'/],
    [["-l"], /^tcpretrans: unknown option '-l'/],
    [["-4", "-6"], /^tcpretrans: -4 and -6 cannot be used together/],
    [["1"], /^tcpretrans: unrecognized positional argument: '1'/],
  ] as [string[], RegExp][]
) {
  Deno.test(`tcpretrans ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("tcpretrans", args);
    assertEquals(code, 2);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(pattern.test(stderr), stderr);
  });
}

Deno.test("tcpretrans --help: USAGE and EXAMPLES under 80 columns, exit 0", async () => {
  const { code, stdout } = await runToolOnce("tcpretrans", ["-h"]);
  assertEquals(code, 0);
  assert(/^USAGE: tcpretrans /m.test(stdout), stdout);
  assert(/^EXAMPLES:/m.test(stdout), stdout);
  assert(stdout.split("\n").every((l) => l.length < 80));
});
