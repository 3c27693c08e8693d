/**
 * tcpconnlat against connects whose truth is known (tcp_connect_workload.ts,
 * in a private network namespace): every established connect once, with its
 * process, ports and a latency; the refused connect and the SYN that is
 * never answered not at all (they establish nothing). One connect is slow on
 * purpose: its first SYN meets a full accept queue and is dropped, so the
 * SYN-ACK answers the retransmission after the initial RTO (1 s): its
 * latency is at least 1000 ms and at most what the workload's connect() took.
 * The loopback ones take well under that. min_ms (1000 and 0.5) keeps the
 * slow one only.
 *
 * No reference runs here: libbpf-tools tcpconnlat needs kprobes on
 * tcp_v4_connect and tcp_rcv_state_process ("failed to create kprobe
 * 'tcp_v4_connect+0x0' perf event"), which this kernel lacks.
 */
import { deepEqual, equal as assertEquals, ok as assert } from "node:assert/strict";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { lostInStderr, waitForPrograms } from "../support/event_tools.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";
import { type ConnectTruth, ConnectWorkload } from "./tcp_connect_workload.ts";
import { listenerPorts } from "./tcplife_workload.ts";

/** One tcpconnlat line. */
interface Line {
  pid: number;
  comm: string;
  ip: number;
  saddr: string;
  lport?: number;
  daddr: string;
  dport: number;
  ms: number;
  elapsed?: number;
}

/** [TIME(s)] PID COMM IP SADDR [LPORT] DADDR DPORT LAT(ms). */
function parseText(stdout: string, cols: { t?: boolean; L?: boolean } = {}): Line[] {
  const lines = stdout.split("\n").filter((l) => l !== "");
  assertEquals(
    lines[0],
    (cols.t ? "TIME(s)   " : "") + "PID    COMM         IP SADDR            " +
      (cols.L ? "LPORT  " : "") + "DADDR            DPORT LAT(ms)",
  );
  return lines.slice(1).map((l) => {
    const f = l.trim().split(/\s+/);
    const elapsed = cols.t ? Number(f.shift()) : undefined;
    const lport = cols.L ? Number(f.splice(4, 1)[0]) : undefined;
    const [pid, comm, ip, saddr, daddr, dport, ms] = f;
    return {
      elapsed,
      pid: Number(pid),
      comm,
      ip: Number(ip),
      saddr,
      lport,
      daddr,
      dport: Number(dport),
      ms: Number(ms),
    };
  });
}

const loopback = (ip: number) => (ip === 4 ? "127.0.0.1" : "::1");

/** Our lines: those of the workload's processes, to its ports. */
function ours(lines: Line[], truth: ConnectTruth[]): Line[] {
  const pids = new Set(truth.map((c) => c.pid)), ports = new Set(truth.map((c) => c.dport));
  return lines.filter((l) => pids.has(l.pid) && ports.has(l.dport));
}

/** The established connects, each once, in order, with a plausible latency. */
function check(lines: Line[], expected: ConnectTruth[], cols: { L?: boolean }, what: string) {
  deepEqual(
    lines.map((l) => ({ ...l, ms: undefined, elapsed: undefined })),
    expected.map((c) => ({
      elapsed: undefined,
      pid: c.pid,
      comm: "python3",
      ip: c.ip,
      saddr: loopback(c.ip),
      lport: cols.L ? c.sport : undefined,
      daddr: loopback(c.ip),
      dport: c.dport,
      ms: undefined,
    })),
    what,
  );
  for (const [i, c] of expected.entries()) {
    const ms = lines[i].ms;
    if (c.kind === "slow") {
      // at least the initial RTO; at most the connect() the workload timed
      assert(ms >= 1000 && ms <= c.ms! + 1, `${what}: slow connect ${ms} ms (connect() ${c.ms})`);
    } else {
      assert(ms >= 0 && ms < 500, `${what}: loopback connect ${ms} ms`);
    }
  }
}

async function ourPrograms(): Promise<string[]> {
  return (await loadedProgramNames()).filter((n) => n.startsWith("tcpconnlat_"));
}

kernelTest("tcpconnlat: each established connect once, with its latency", async () => {
  assertEquals((await ourPrograms()).length, 0, "tcpconnlat programs loaded before the test");
  const { port4, port6 } = listenerPorts();
  const workload = new ConnectWorkload(port4, port6, 5, 2, 200);
  const runs = [[], ["--json"], ["-t", "-L"], ["-p", String(workload.pid)], ["1000"], ["0.5"]];
  const tools = runs.map((args) => new ToolProcess("tcpconnlat", args));
  await waitForPrograms("tcpconnlat_st", tools.length);
  const truth = await workload.run();
  const established = truth.filter((c) => c.kind === "established" || c.kind === "slow");
  assertEquals(established.length, 5 + 2 + 1 + 1 + 1 + 1, JSON.stringify(truth));
  const slow = truth.filter((c) => c.kind === "slow");
  await waitFor(
    () =>
      tools.every((t) =>
        t.stdout.includes(` ${slow[0].dport} `) || t.stdout.includes(`"dport":${slow[0].dport}`)
      ),
    5000,
    "the slow connect in every run",
  );
  await new Promise((r) => setTimeout(r, 300));
  for (const t of tools) t.kill("SIGINT");
  const results = await Promise.all(tools.map((t) => t.finish()));
  for (const r of results) {
    assertEquals(r.code, 0, r.stderr);
    assertEquals(lostInStderr(r.stderr), 0, r.stderr);
  }
  const [text, json, timed, byPid, min1000, min05] = results.map((r) => r.stdout);

  check(ours(parseText(text), truth), established, {}, "text");
  const timedLines = parseText(timed, { t: true, L: true });
  check(ours(timedLines, truth), established, { L: true }, "-t -L");
  assertEquals(timedLines[0].elapsed, 0, "-t counts from the first connect shown");
  const pidLines = parseText(byPid);
  assert(pidLines.every((l) => l.pid === workload.pid), "-p: only the process");
  check(pidLines, established.filter((c) => c.pid === workload.pid), {}, "-p");
  check(ours(parseText(min1000), truth), slow, {}, "min_ms 1000");
  check(ours(parseText(min05), truth), slow, {}, "min_ms 0.5");

  const jsonLines = json.trim().split("\n").map((l) => JSON.parse(l))
    .filter((j) => established.some((c) => c.pid === j.pid && c.sport === j.lport));
  check(
    jsonLines.map((j): Line => ({
      pid: j.pid,
      comm: j.comm,
      ip: j.ip,
      saddr: j.saddr,
      lport: undefined,
      daddr: j.daddr,
      dport: j.dport,
      ms: j.lat_ms,
      elapsed: undefined,
    })),
    established,
    {},
    "--json",
  );
  assert(
    jsonLines.every((j) => Math.abs(j.lat_us / 1000 - j.lat_ms) <= 0.0051),
    "--json: lat_us and lat_ms agree",
  );
  await waitFor(async () => (await ourPrograms()).length === 0, 3000, "tcpconnlat to unload");
});

for (
  const [args, pattern] of [
    [["-x"], /^tcpconnlat: unknown option '-x'/],
    [["-1"], /^tcpconnlat: .*'-1'/],
    [["abc"], /^tcpconnlat: invalid min_ms 'abc': not a number/],
    [["-p", "0"], /^tcpconnlat: invalid PID '0': must be at least 1/],
    [["1", "2"], /^tcpconnlat: unrecognized positional argument: '2'/],
  ] as [string[], RegExp][]
) {
  Deno.test(`tcpconnlat ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("tcpconnlat", args);
    assertEquals(code, 2);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(pattern.test(stderr), stderr);
  });
}

Deno.test("tcpconnlat --help: USAGE and EXAMPLES under 80 columns, exit 0", async () => {
  const { code, stdout } = await runToolOnce("tcpconnlat", ["-h"]);
  assertEquals(code, 0);
  assert(/^USAGE: tcpconnlat /m.test(stdout), stdout);
  assert(/^EXAMPLES:/m.test(stdout), stdout);
  assert(stdout.split("\n").every((l) => l.length < 80));
});
