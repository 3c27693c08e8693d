/**
 * tcpstates against a connect/close sequence whose transitions are known,
 * in a private network namespace, once over IPv4 and once over IPv6: a
 * listener, a client that connects, holds the connection HOLD_MS, closes
 * first, and the server that closes GAP_MS later. Every socket must show
 * exactly its transitions, in order:
 *
 * - listener: CLOSE -> LISTEN, then LISTEN -> CLOSE;
 * - client: CLOSE -> SYN_SENT (no local port yet), SYN_SENT -> ESTABLISHED,
 *   ESTABLISHED -> FIN_WAIT1 (MS >= HOLD_MS), FIN_WAIT1 -> FIN_WAIT2,
 *   FIN_WAIT2 -> CLOSE (the server's FIN: a time-wait socket takes over);
 * - server: LISTEN -> SYN_RECV, SYN_RECV -> ESTABLISHED, ESTABLISHED ->
 *   CLOSE_WAIT (MS >= HOLD_MS), CLOSE_WAIT -> LAST_ACK (MS >= GAP_MS),
 *   LAST_ACK -> CLOSE.
 *
 * libbpf-tools tcpstates runs here (it uses the same tracepoint) and watches
 * the same workload: its lines for these sockets must be ours, column for
 * column, with MS within 1 ms (each tool reads the clock in its own program).
 */
import { deepEqual, equal as assertEquals, ok as assert } from "node:assert/strict";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import {
  lostInStderr,
  PausedWorkload,
  ReferenceTool,
  waitForPrograms,
} from "../support/event_tools.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";
import { listenerPorts } from "./tcplife_workload.ts";

const HOLD_MS = 300;
const GAP_MS = 100;

const WORKLOAD = String.raw`
import fcntl, json, os, socket, struct, sys, time
port4, port6, hold_ms, gap_ms = map(int, sys.argv[1:5])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
flags = struct.unpack("16sh", fcntl.ioctl(s, 0x8913, struct.pack("16sh", b"lo", 0)))[1]
fcntl.ioctl(s, 0x8914, struct.pack("16sh", b"lo", flags | 1))
s.close()
sys.stdin.readline()
for family, host, port in ((socket.AF_INET, "127.0.0.1", port4), (socket.AF_INET6, "::1", port6)):
    ls = socket.socket(family); ls.bind((host, port)); ls.listen(4)
    c = socket.socket(family); c.connect((host, port))
    a, _ = ls.accept()
    print(json.dumps({"ip": 4 if family == socket.AF_INET else 6, "port": port,
                      "client": c.getsockname()[1]}), flush=True)
    time.sleep(hold_ms / 1000)
    c.close()
    time.sleep(gap_ms / 1000)
    a.close()
    ls.close()
`;

/** One tcpstates line. */
interface Line {
  skaddr: string;
  pid: number;
  comm: string;
  ip?: number;
  laddr: string;
  lport: number;
  raddr: string;
  rport: number;
  old: string;
  new: string;
  ms: number;
  time?: string;
  elapsed?: number;
}

const HEADER = "SKADDR           PID     COMM       LADDR           LPORT RADDR           RPORT " +
  "OLDSTATE    -> NEWSTATE    MS";
const WIDE = "SKADDR           PID     COMM             IP LADDR                      LPORT " +
  "RADDR                      RPORT OLDSTATE    -> NEWSTATE    MS";

/** [TIME] [TIME(s)] SKADDR PID COMM [IP] LADDR LPORT RADDR RPORT OLD -> NEW MS. */
function parseText(stdout: string, cols: { T?: boolean; t?: boolean; w?: boolean } = {}): Line[] {
  const lines = stdout.split("\n").filter((l) => l !== "");
  const prefix = (cols.T ? "TIME     " : "") + (cols.t ? "TIME(s)   " : "");
  assertEquals(lines[0], prefix + (cols.w ? WIDE : HEADER));
  return lines.slice(1).map((l) => {
    const f = l.trim().split(/\s+/);
    const time = cols.T ? f.shift() : undefined;
    const elapsed = cols.t ? Number(f.shift()) : undefined;
    const [old, arrow, next, ms] = f.splice(-4);
    assertEquals(arrow, "->", l);
    const [laddr, lport, raddr, rport] = f.splice(-4);
    const ip = cols.w ? Number(f.pop()) : undefined;
    return {
      time,
      elapsed,
      skaddr: f[0],
      pid: Number(f[1]),
      comm: f.slice(2).join(" "),
      ip,
      laddr,
      lport: Number(lport),
      raddr,
      rport: Number(rport),
      old,
      new: next,
      ms: Number(ms),
    };
  });
}

/** What the workload did, per family. */
interface Flow {
  ip: 4 | 6;
  port: number;
  client: number;
}

/**
 * The three sockets of a flow in `lines`, each with its transitions in order.
 * A socket's lines are those of its address up to its change to CLOSE (the
 * kernel may reuse the address for a later socket).
 */
function socketsOf(lines: Line[], flow: Flow) {
  const lives: Line[][] = [];
  const open = new Map<string, Line[]>();
  for (const l of lines) {
    let life = open.get(l.skaddr);
    if (!life) {
      life = [];
      lives.push(life);
      open.set(l.skaddr, life);
    }
    life.push(l);
    if (l.new === "CLOSE") open.delete(l.skaddr);
  }
  const find = (pred: (l: Line) => boolean) => lives.find((life) => life.some(pred)) ?? [];
  return {
    listener: find((l) => l.new === "LISTEN" && l.lport === flow.port),
    client: find((l) => l.lport === flow.client && l.rport === flow.port),
    server: find((l) => l.lport === flow.port && l.rport === flow.client),
  };
}

const TRANSITIONS = {
  listener: ["CLOSE -> LISTEN", "LISTEN -> CLOSE"],
  client: [
    "CLOSE -> SYN_SENT",
    "SYN_SENT -> ESTABLISHED",
    "ESTABLISHED -> FIN_WAIT1",
    "FIN_WAIT1 -> FIN_WAIT2",
    "FIN_WAIT2 -> CLOSE",
  ],
  server: [
    "LISTEN -> SYN_RECV",
    "SYN_RECV -> ESTABLISHED",
    "ESTABLISHED -> CLOSE_WAIT",
    "CLOSE_WAIT -> LAST_ACK",
    "LAST_ACK -> CLOSE",
  ],
};

/** Every socket of the flow shows exactly its transitions, with its ends and plausible times. */
function checkFlow(lines: Line[], flow: Flow, what: string) {
  const s = socketsOf(lines, flow);
  for (const [name, expected] of Object.entries(TRANSITIONS)) {
    const got = s[name as keyof typeof s];
    deepEqual(
      got.map((l) => `${l.old} -> ${l.new}`),
      expected,
      `${what}: ${name}\n${JSON.stringify(got, null, 1)}`,
    );
  }
  const host = flow.ip === 4 ? "127.0.0.1" : "::1";
  const any = flow.ip === 4 ? "0.0.0.0" : "::";
  assert(s.listener.every((l) => l.laddr === host && l.raddr === any && l.rport === 0), what);
  assertEquals(s.client[0].lport, 0, `${what}: no local port at SYN_SENT`);
  assert(s.client.slice(1).every((l) => l.lport === flow.client && l.rport === flow.port), what);
  assert(
    [...s.client, ...s.server].every((l) => l.laddr === host && l.raddr === host),
    `${what}: addresses`,
  );
  // the first change seen of a socket has no previous one
  assert([s.listener[0], s.client[0], s.server[0]].every((l) => l.ms === 0), `${what}: MS 0`);
  assert(s.client[2].ms >= HOLD_MS && s.server[2].ms >= HOLD_MS, `${what}: the hold`);
  assert(s.server[3].ms >= GAP_MS, `${what}: the gap before the server's close`);
  assert(s.listener[1].ms >= HOLD_MS + GAP_MS, `${what}: the listener's life`);
  // changes made by a system call: the workload's process is current
  for (const l of [s.listener[0], s.client[0], s.client[2], s.server[3], s.listener[1]]) {
    assertEquals(l.comm, "python3", `${what}: ${l.old} -> ${l.new}`);
  }
}

async function ourPrograms(): Promise<string[]> {
  return (await loadedProgramNames()).filter((n) => n.startsWith("tcpstates_"));
}

kernelTest("tcpstates: the exact transitions of a known sequence, as libbpf-tools", async () => {
  assertEquals((await ourPrograms()).length, 0, "tcpstates programs loaded before the test");
  const { port4, port6 } = listenerPorts();
  const runs = [
    [],
    ["--json"],
    ["-T", "-t"],
    ["-w"],
    ["-L", String(port4)],
    ["-D", `${port6},9`],
    ["-4"],
    ["-6"],
  ];
  const tools = runs.map((args) => new ToolProcess("tcpstates", args));
  const reference = new ReferenceTool("/usr/sbin/tcpstates", []);
  await Promise.all([
    waitForPrograms("tcpstates_st", tools.length),
    waitFor(() => reference.stdout.includes("SKADDR"), 15000, "libbpf-tools tcpstates"),
  ]);
  const workload = new PausedWorkload("unshare", [
    "-n",
    "python3",
    "-c",
    WORKLOAD,
    ...[port4, port6, HOLD_MS, GAP_MS].map(String),
  ]);
  const run = await workload.run();
  assertEquals(run.code, 0, run.stderr);
  const [flow4, flow6] = run.stdout.trim().split("\n").map((l) => JSON.parse(l) as Flow);
  await new Promise((r) => setTimeout(r, 300));
  for (const t of [...tools, reference]) t.kill("SIGINT");
  const results = await Promise.all(tools.map((t) => t.finish()));
  for (const r of results) {
    assertEquals(r.code, 0, r.stderr);
    assertEquals(lostInStderr(r.stderr), 0, r.stderr);
  }
  const ref = await reference.wait();
  const [text, json, timed, wide, byL, byD, only4, only6] = results.map((r) => r.stdout);

  const lines = parseText(text);
  checkFlow(lines, flow4, "IPv4");
  checkFlow(lines, flow6, "IPv6");

  // libbpf-tools: the same lines for these sockets, MS within 1 ms
  const refLines = parseText(ref.stdout);
  for (const flow of [flow4, flow6]) {
    const ours = socketsOf(lines, flow), theirs = socketsOf(refLines, flow);
    for (const name of ["listener", "client", "server"] as const) {
      deepEqual(
        ours[name].map((l) => ({ ...l, ms: 0 })),
        theirs[name].map((l) => ({ ...l, ms: 0 })),
        `libbpf-tools: IPv${flow.ip} ${name}`,
      );
      ours[name].forEach((l, i) =>
        assert(Math.abs(l.ms - theirs[name][i].ms) < 1, `MS ${l.ms} vs ${theirs[name][i].ms}`)
      );
    }
  }

  const jsonLines: Line[] = json.trim().split("\n").map((l) => JSON.parse(l)).map((j) => ({
    ...j,
    old: j.oldstate,
    new: j.newstate,
  }));
  checkFlow(jsonLines, flow4, "--json IPv4");
  checkFlow(jsonLines, flow6, "--json IPv6");
  const timedLines = parseText(timed, { T: true, t: true });
  checkFlow(timedLines, flow4, "-T -t");
  assert(timedLines.every((l) => /^\d\d:\d\d:\d\d$/.test(l.time!)), timed);
  assertEquals(timedLines[0].elapsed, 0, "-t counts from the first line");
  const wideLines = parseText(wide, { w: true });
  checkFlow(wideLines, flow6, "-w");
  assert(socketsOf(wideLines, flow6).client.every((l) => l.ip === 6), "-w: IP column");

  const lLines = parseText(byL);
  assert(lLines.every((l) => l.lport === port4), "-L: only the local port");
  const s4 = socketsOf(lLines, flow4);
  deepEqual(s4.listener.map((l) => `${l.old} -> ${l.new}`), TRANSITIONS.listener, "-L listener");
  deepEqual(s4.server.map((l) => `${l.old} -> ${l.new}`), TRANSITIONS.server, "-L server");
  assertEquals(lLines.length, 7, `-L: the listener's and the server's only\n${byL}`);
  const dLines = parseText(byD);
  assert(dLines.every((l) => l.rport === port6 || l.rport === 9), "-D: only the remote ports");
  // the client's CLOSE -> SYN_SENT already has the remote port
  deepEqual(
    socketsOf(dLines, flow6).client.map((l) => `${l.old} -> ${l.new}`),
    TRANSITIONS.client,
    "-D client",
  );
  const lines4 = parseText(only4), lines6 = parseText(only6);
  assert(lines4.every((l) => !l.laddr.includes(":")), "-4: IPv4 only");
  assert(lines6.every((l) => l.laddr.includes(":")), "-6: IPv6 only");
  checkFlow(lines4, flow4, "-4");
  checkFlow(lines6, flow6, "-6");
  await waitFor(async () => (await ourPrograms()).length === 0, 3000, "tcpstates to unload");
}, { commands: ["/usr/sbin/tcpstates"] });

for (
  const [args, pattern] of [
    [["-x"], /^tcpstates: unknown option '-x'/],
    [["-4", "-6"], /^tcpstates: -4 and -6 cannot be used together/],
    [["-L", "0"], /^tcpstates: invalid port '0' in -L 0/],
    [["-D", "80,x"], /^tcpstates: invalid port 'x' in -D 80,x/],
    [["1"], /^tcpstates: unrecognized positional argument: '1'/],
  ] as [string[], RegExp][]
) {
  Deno.test(`tcpstates ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("tcpstates", args);
    assertEquals(code, 2);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(pattern.test(stderr), stderr);
  });
}

Deno.test("tcpstates --help: USAGE and EXAMPLES under 80 columns, exit 0", async () => {
  const { code, stdout } = await runToolOnce("tcpstates", ["-h"]);
  assertEquals(code, 0);
  assert(/^USAGE: tcpstates /m.test(stdout), stdout);
  assert(/^EXAMPLES:/m.test(stdout), stdout);
  assert(stdout.split("\n").every((l) => l.length < 80));
});
