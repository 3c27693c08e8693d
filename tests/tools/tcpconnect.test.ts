/**
 * tcpconnect against connects whose truth is known (tcp_connect_workload.ts,
 * in a private network namespace): 5 IPv4 and 2 IPv6 connects to listening
 * ports, one refused, one by a child running as UID 65534, one to a full
 * accept queue (non-blocking: its SYN is never answered, so only the
 * sys_exit_connect path can show it while it waits). Each must appear
 * exactly once with its process, UID, ports and addresses, in every format
 * and under every filter; -c must count them.
 *
 * No reference runs here: libbpf-tools tcpconnect and tcpconnect.bt need
 * kprobes on tcp_v4_connect/tcp_connect, which this kernel lacks (the
 * libbpf-tools binary exits with "failed to create kprobe
 * 'tcp_v4_connect+0x0' perf event").
 */
import { deepEqual, equal as assertEquals, ok as assert } from "node:assert/strict";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { lostInStderr, waitForPrograms } from "../support/event_tools.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";
import { type ConnectTruth, ConnectWorkload } from "./tcp_connect_workload.ts";
import { listenerPorts } from "./tcplife_workload.ts";

/** How long the workload keeps its unanswered SYN before closing the socket. */
const HOLD_MS = 2000;

/** One tcpconnect line. */
interface Line {
  pid: number;
  uid?: number;
  comm: string;
  ip: number;
  saddr: string;
  daddr: string;
  sport?: number;
  dport: number;
  elapsed?: number;
}

/** [TIME(s)] [UID] PID COMM IP SADDR DADDR [SPORT] DPORT. */
function parseText(stdout: string, cols: { t?: boolean; u?: boolean; s?: boolean } = {}): Line[] {
  const lines = stdout.split("\n").filter((l) => l !== "");
  assertEquals(
    lines[0],
    (cols.t ? "TIME(s)  " : "") + (cols.u ? "UID   " : "") +
      "PID    COMM         IP SADDR            DADDR           " + (cols.s ? " SPORT" : "") +
      " DPORT",
  );
  return lines.slice(1).map((l) => {
    const f = l.trim().split(/\s+/);
    const elapsed = cols.t ? Number(f.shift()) : undefined;
    const uid = cols.u ? Number(f.shift()) : undefined;
    const [pid, comm, ip, saddr, daddr] = f;
    return {
      elapsed,
      uid,
      pid: Number(pid),
      comm,
      ip: Number(ip),
      saddr,
      daddr,
      sport: cols.s ? Number(f[5]) : undefined,
      dport: Number(f.at(-1)),
    };
  });
}

const loopback = (ip: number) => (ip === 4 ? "127.0.0.1" : "::1");

/** The line each connect must have (the source port only where it is printed). */
function expectedLine(c: ConnectTruth, cols: { u?: boolean; s?: boolean } = {}): Line {
  return {
    pid: c.pid,
    ...(cols.u ? { uid: c.uid } : { uid: undefined }),
    comm: "python3",
    ip: c.ip,
    saddr: loopback(c.ip),
    daddr: loopback(c.ip),
    sport: cols.s ? c.sport : undefined,
    dport: c.dport,
    elapsed: undefined,
  };
}

/** Our lines: those of the workload's processes, to its ports. */
function ours(lines: Line[], truth: ConnectTruth[]): Line[] {
  const pids = new Set(truth.map((c) => c.pid)), ports = new Set(truth.map((c) => c.dport));
  return lines.filter((l) => pids.has(l.pid) && ports.has(l.dport));
}

/** Every connect in `expected` once (matched by source port when shown, else by order). */
function check(
  lines: Line[],
  expected: ConnectTruth[],
  cols: { u?: boolean; s?: boolean },
  what: string,
) {
  const got = lines.map((l) => ({ ...l, elapsed: undefined }));
  const want = expected.map((c) => expectedLine(c, cols));
  const key = (l: Line) => `${l.pid} ${l.dport} ${l.sport ?? ""}`;
  deepEqual(got.map(key).sort(), want.map(key).sort(), what);
  if (cols.s) {
    deepEqual(
      got.sort((a, b) => a.sport! - b.sport!),
      want.sort((a, b) => a.sport! - b.sport!),
      what,
    );
  } else deepEqual(got, want, what);
}

async function ourPrograms(): Promise<string[]> {
  return (await loadedProgramNames()).filter((n) => n.startsWith("tcpconnect_"));
}

kernelTest("tcpconnect: each connect once, with its process, UID and ports", async () => {
  assertEquals((await ourPrograms()).length, 0, "tcpconnect programs loaded before the test");
  const { port4, port6 } = listenerPorts();
  const workload = new ConnectWorkload(port4, port6, 5, 2, HOLD_MS);
  const runs: string[][] = [
    ["-s"],
    ["--json"],
    ["-t", "-U"],
    ["-p", String(workload.pid)],
    ["-u", "65534", "-U"],
    ["-P", `${port6},9`],
    ["-4", "-s"],
    ["-6"],
    ["-c"],
    ["-c", "-s", "--json"],
  ];
  const tools = runs.map((args) => new ToolProcess("tcpconnect", args));
  await waitForPrograms("tcpconnect_ex", tools.length);
  let finished = false;
  const running = workload.run().finally(() => (finished = true));
  // The unanswered SYN shows while it is unanswered (the workload holds it for
  // HOLD_MS before closing it): the connects to the full queue's port are the
  // first connects to a port other than the listeners' and the closed one.
  const known = [port4, port6, port4 + 2];
  const toFullQueue = () =>
    parseText(tools[0].stdout, { s: true }).filter((l) =>
      l.pid === workload.pid && !known.includes(l.dport)
    ).length;
  await waitFor(() => toFullQueue() >= 2 || finished, 10_000, "the unanswered connect");
  assert(!finished && toFullQueue() >= 2, "the unanswered connect shows before it ends");
  const truth = await running;
  assertEquals(truth.length, 5 + 2 + 1 + 1 + 2 + 2, JSON.stringify(truth));
  await new Promise((r) => setTimeout(r, 300));
  for (const t of tools) t.kill("SIGINT");
  const results = await Promise.all(tools.map((t) => t.finish()));
  for (const r of results) {
    assertEquals(r.code, 0, r.stderr);
    assertEquals(lostInStderr(r.stderr), 0, r.stderr);
  }
  const [withSport, json, timed, byPid, byUid, byPort, only4, only6, counted, countedJson] = results
    .map((r) => r.stdout);
  const v4 = truth.filter((c) => c.ip === 4), v6 = truth.filter((c) => c.ip === 6);
  const main = truth.filter((c) => c.pid === workload.pid);
  const child = truth.filter((c) => c.uid === 65534);
  assertEquals(child.length, 1);

  check(ours(parseText(withSport, { s: true }), truth), truth, { s: true }, "-s");
  const jsonLines = json.trim().split("\n").map((l) => JSON.parse(l));
  deepEqual(
    jsonLines.filter((j) => truth.some((c) => c.pid === j.pid && c.sport === j.sport))
      .map((j) => ({ ...j, time: undefined })).sort((a, b) => a.sport - b.sport),
    truth.map((c) => ({
      time: undefined,
      uid: c.uid,
      pid: c.pid,
      comm: "python3",
      ip: c.ip,
      saddr: loopback(c.ip),
      sport: c.sport,
      daddr: loopback(c.ip),
      dport: c.dport,
    })).sort((a, b) => a.sport - b.sport),
    "--json",
  );
  assert(jsonLines.every((j) => /^\d{4}-\d\d-\d\dT/.test(j.time)), "--json: time");
  const timedLines = parseText(timed, { t: true, u: true });
  check(ours(timedLines, truth), truth, { u: true }, "-t -U");
  assertEquals(timedLines[0].elapsed, 0, "-t counts from the first connect shown");
  assert(timedLines.every((l) => l.elapsed! >= 0 && l.elapsed! < 60), timed);

  const pidLines = parseText(byPid);
  assert(pidLines.every((l) => l.pid === workload.pid), "-p: only the process");
  check(pidLines, main, {}, "-p");
  const uidLines = parseText(byUid, { u: true });
  assert(uidLines.every((l) => l.uid === 65534), "-u: only the user");
  check(ours(uidLines, truth), child, { u: true }, "-u");
  const portLines = parseText(byPort);
  assert(portLines.every((l) => l.dport === port6 || l.dport === 9), "-P: only the ports");
  check(portLines, v6, {}, "-P");
  const lines4 = parseText(only4, { s: true }), lines6 = parseText(only6);
  assert(lines4.every((l) => l.ip === 4) && lines6.every((l) => l.ip === 6), "-4/-6");
  check(ours(lines4, truth), v4, { s: true }, "-4");
  check(ours(lines6, truth), v6, {}, "-6");

  // -c: libbpf-tools' table at the end, one row per source, destination, port.
  const rows = counted.split("\n");
  assertEquals(rows[0], "", "-c: a blank line first");
  assertEquals(
    rows[1],
    `${"LADDR".padEnd(25)} ${"RADDR".padEnd(25)} ${"RPORT".padEnd(20)} ${"CONNECTS".padEnd(10)}`,
  );
  const counts = new Map<number, number>();
  for (const c of truth) counts.set(c.dport, (counts.get(c.dport) ?? 0) + 1);
  for (const [dport, n] of counts) {
    const ip = truth.find((c) => c.dport === dport)!.ip;
    const row = `${loopback(ip).padEnd(25)} ${loopback(ip).padEnd(25)} ${
      String(dport).padEnd(20)
    } ${String(n).padEnd(10)}`;
    assertEquals(rows.filter((r) => r === row).length, 1, `-c: ${row}\n${counted}`);
  }
  // -c -s --json: one object per row, each connect its own row (its source port)
  const countRows = countedJson.trim().split("\n").map((l) => JSON.parse(l));
  for (const c of truth) {
    const row = countRows.filter((r) => r.lport === c.sport && r.rport === c.dport);
    deepEqual(row.map((r) => ({ ...r, time: undefined })), [{
      time: undefined,
      laddr: loopback(c.ip),
      raddr: loopback(c.ip),
      lport: c.sport,
      rport: c.dport,
      connects: 1,
    }], "-c -s --json");
  }
  await waitFor(async () => (await ourPrograms()).length === 0, 3000, "tcpconnect to unload");
});

for (
  const [args, pattern] of [
    [["-x"], /^tcpconnect: unknown option '-x'/],
    [["-4", "-6"], /^tcpconnect: -4 and -6 cannot be used together/],
    [["-P", "0"], /^tcpconnect: invalid port '0' in -P 0/],
    [["-p", "x"], /^tcpconnect: invalid PID 'x': not an integer/],
    [["-u", "-1"], /^tcpconnect: invalid UID '-1': negative/],
    [["1"], /^tcpconnect: unrecognized positional argument: '1'/],
  ] as [string[], RegExp][]
) {
  Deno.test(`tcpconnect ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("tcpconnect", args);
    assertEquals(code, 2);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(pattern.test(stderr), stderr);
  });
}

Deno.test("tcpconnect --help: USAGE and EXAMPLES under 80 columns, exit 0", async () => {
  const { code, stdout } = await runToolOnce("tcpconnect", ["-h"]);
  assertEquals(code, 0);
  assert(/^USAGE: tcpconnect /m.test(stdout), stdout);
  assert(/^EXAMPLES:/m.test(stdout), stdout);
  assert(stdout.split("\n").every((l) => l.length < 80));
});
