/**
 * tcpdrop against drops whose truth is known, in a private network
 * namespace: 3 IPv4 and 2 IPv6 connects to a port nobody listens on, each
 * from a bound (so known) source port. Each SYN finds no socket: the
 * kernel answers with a reset and frees the SYN with reason NO_SOCKET, so
 * each connect must give exactly one line: its ends, no socket ("-"), the
 * SYN flag, NO_SOCKET, and a kernel stack through tcp_v4_rcv / tcp_v6_rcv.
 * Other drops on the machine may show too: lines are picked out by port.
 *
 * No reference runs here: bcc's tcpdrop is Python (no kernel headers here)
 * and skips packets without a socket; tcpdrop.bt fails on this machine
 * ("'net/sock.h' file not found").
 */
import { deepEqual, equal as assertEquals, ok as assert } from "node:assert/strict";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { lostInStderr, PausedWorkload, waitForPrograms } from "../support/event_tools.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";
import { listenerPorts } from "./tcplife_workload.ts";

const WORKLOAD = String.raw`
import fcntl, json, socket, struct, sys
closed, n4, n6 = map(int, sys.argv[1:4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
flags = struct.unpack("16sh", fcntl.ioctl(s, 0x8913, struct.pack("16sh", b"lo", 0)))[1]
fcntl.ioctl(s, 0x8914, struct.pack("16sh", b"lo", flags | 1))
s.close()
sys.stdin.readline()
for family, host, n in ((socket.AF_INET, "127.0.0.1", n4), (socket.AF_INET6, "::1", n6)):
    for _ in range(n):
        c = socket.socket(family)
        c.bind((host, 0))  # a bound port outlives the reset: it is known afterwards
        try:
            c.connect((host, closed))
            raise SystemExit("a closed port accepted")
        except ConnectionRefusedError:
            pass
        print(json.dumps({"ip": 4 if family == socket.AF_INET else 6, "sport": c.getsockname()[1]}),
              flush=True)
        c.close()
`;

/** One tcpdrop event (a line and its stack). */
interface Drop {
  time?: string;
  pid: number;
  ip: number;
  saddr: string;
  sport: number;
  daddr: string;
  dport: number;
  state: string;
  flags: string;
  reason: string;
  stack: string[];
}

const HEADER =
  "TIME     PID     IP SADDR:SPORT          > DADDR:DPORT          STATE (FLAGS) REASON";

/** Lines, each followed by its stack (tab-indented) and a blank line. */
function parseText(stdout: string): Drop[] {
  const lines = stdout.split("\n");
  assertEquals(lines[0], HEADER);
  const drops: Drop[] = [];
  for (const l of lines.slice(1)) {
    if (l.startsWith("\t")) {
      drops.at(-1)!.stack.push(l.slice(1));
      continue;
    }
    if (l === "") continue;
    const [time, pid, ip, src, arrow, dst, state, flags, reason] = l.trim().split(/\s+/);
    assertEquals(arrow, ">", l);
    const split = (ep: string) =>
      [ep.slice(0, ep.lastIndexOf(":")), Number(ep.slice(ep.lastIndexOf(":") + 1))] as const;
    const [saddr, sport] = split(src), [daddr, dport] = split(dst);
    drops.push({
      time,
      pid: Number(pid),
      ip: Number(ip),
      saddr,
      sport,
      daddr,
      dport,
      state,
      flags: flags.slice(1, -1),
      reason,
      stack: [],
    });
  }
  return drops;
}

/** The drop each refused connect must give. */
function expected(truth: { ip: number; sport: number }[], closed: number) {
  return truth.map((t) => {
    const host = t.ip === 4 ? "127.0.0.1" : "::1";
    return {
      ip: t.ip,
      saddr: host,
      sport: t.sport,
      daddr: host,
      dport: closed,
      state: "-",
      flags: "SYN",
      reason: "NO_SOCKET",
    };
  });
}

function check(
  drops: Drop[],
  truth: { ip: number; sport: number }[],
  closed: number,
  what: string,
) {
  const mine = drops.filter((d) => d.dport === closed && truth.some((t) => t.sport === d.sport));
  deepEqual(
    mine.map(({ ip, saddr, sport, daddr, dport, state, flags, reason }) => ({
      ip,
      saddr,
      sport,
      daddr,
      dport,
      state,
      flags,
      reason,
    })),
    expected(truth, closed),
    what,
  );
  for (const d of mine) {
    assert(d.stack.some((f) => f.startsWith(`tcp_v${d.ip}_rcv+0x`)), `${what}: ${d.stack}`);
  }
}

async function ourPrograms(): Promise<string[]> {
  return (await loadedProgramNames()).filter((n) => n.startsWith("tcpdrop_"));
}

kernelTest("tcpdrop: each SYN to a closed port once, with reason NO_SOCKET", async () => {
  assertEquals((await ourPrograms()).length, 0, "tcpdrop programs loaded before the test");
  const closed = listenerPorts().port4;
  const runs = [[], ["--json"], ["-4"], ["-6"]];
  const tools = runs.map((args) => new ToolProcess("tcpdrop", args));
  await waitForPrograms("tcpdrop_kfree", tools.length);
  const workload = new PausedWorkload("unshare", [
    "-n",
    "python3",
    "-c",
    WORKLOAD,
    ...[closed, 3, 2].map(String),
  ]);
  const run = await workload.run();
  assertEquals(run.code, 0, run.stderr);
  const truth = run.stdout.trim().split("\n").map((l) =>
    JSON.parse(l) as { ip: number; sport: number }
  );
  assertEquals(truth.length, 5);
  await new Promise((r) => setTimeout(r, 500));
  for (const t of tools) t.kill("SIGINT");
  const results = await Promise.all(tools.map((t) => t.finish()));
  for (const r of results) {
    assertEquals(r.code, 0, r.stderr);
    assertEquals(lostInStderr(r.stderr), 0, r.stderr);
  }
  const [text, json, only4, only6] = results.map((r) => r.stdout);
  const drops = parseText(text);
  check(drops, truth, closed, "text");
  assert(drops.every((d) => /^\d\d:\d\d:\d\d$/.test(d.time!)), text);
  check(json.trim().split("\n").map((l) => JSON.parse(l)), truth, closed, "--json");
  const drops4 = parseText(only4), drops6 = parseText(only6);
  assert(drops4.every((d) => d.ip === 4) && drops6.every((d) => d.ip === 6), "-4/-6");
  check(drops4, truth.filter((t) => t.ip === 4), closed, "-4");
  check(drops6, truth.filter((t) => t.ip === 6), closed, "-6");
  await waitFor(async () => (await ourPrograms()).length === 0, 3000, "tcpdrop to unload");
});

for (
  const [args, pattern] of [
    [["-x"], /^tcpdrop: unknown option '-x'/],
    [["-4", "-6"], /^tcpdrop: -4 and -6 cannot be used together/],
    [["1"], /^tcpdrop: unrecognized positional argument: '1'/],
  ] as [string[], RegExp][]
) {
  Deno.test(`tcpdrop ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("tcpdrop", args);
    assertEquals(code, 2);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(pattern.test(stderr), stderr);
  });
}

Deno.test("tcpdrop --help: USAGE and EXAMPLES under 80 columns, exit 0", async () => {
  const { code, stdout } = await runToolOnce("tcpdrop", ["-h"]);
  assertEquals(code, 0);
  assert(/^USAGE: tcpdrop /m.test(stdout), stdout);
  assert(/^EXAMPLES:/m.test(stdout), stdout);
  assert(stdout.split("\n").every((l) => l.length < 80));
});
