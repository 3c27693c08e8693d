/**
 * tcpaccept against loopback connections whose truth is known: the server
 * process of tcplife_workload.ts accepts every connection (accept4, as
 * Python does), and knows each one's ports; a second workload accepts with
 * the plain accept(2) system call, and makes accepts that must not show
 * (a Unix socket, a non-blocking accept that fails with EAGAIN). Each runs
 * in a private network namespace. Other tests' traffic may show up: lines
 * are picked out by PID, and filters are checked on every line.
 *
 * No reference tool runs here: bcc's tcpaccept and tcpaccept.bt need a
 * kretprobe on inet_csk_accept (no kprobes on this kernel), and
 * libbpf-tools has no tcpaccept.
 */
import { deepEqual, equal as assertEquals, ok as assert } from "node:assert/strict";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { lostInStderr, PausedWorkload, waitForPrograms } from "../support/event_tools.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";
import { type Endpoint, listenerPorts, type TcpTruth, TcpWorkload } from "./tcplife_workload.ts";

const PER_FAMILY = 3;

/** One tcpaccept line. */
interface Accept {
  pid: number;
  comm: string;
  ip: number;
  raddr: string;
  rport: number;
  laddr: string;
  lport: number;
  time?: string;
  elapsed?: number;
}

const HEADER = "PID     COMM         IP RADDR            RPORT LADDR            LPORT";

/** [TIME] [TIME(s)] PID COMM IP RADDR RPORT LADDR LPORT (COMM may hold spaces). */
function parseText(stdout: string, columns: { time?: boolean; timestamp?: boolean } = {}) {
  const lines = stdout.trim().split("\n");
  const prefix = (columns.time ? "TIME     " : "") + (columns.timestamp ? "TIME(s)  " : "");
  assertEquals(lines[0], prefix + HEADER);
  return lines.slice(1).map((l): Accept => {
    const f = l.trim().split(/\s+/);
    const time = columns.time ? f.shift() : undefined;
    const elapsed = columns.timestamp ? Number(f.shift()) : undefined;
    const [ip, raddr, rport, laddr, lport] = f.slice(-5);
    return {
      time,
      elapsed,
      pid: Number(f[0]),
      comm: f.slice(1, -5).join(" "),
      ip: Number(ip),
      raddr,
      rport: Number(rport),
      laddr,
      lport: Number(lport),
    };
  });
}

function parseJson(stdout: string): Accept[] {
  return stdout.trim().split("\n").filter((l) => l).map((l) => JSON.parse(l));
}

const loopback = (ip: number) => (ip === 4 ? "127.0.0.1" : "::1");

/** The server ends: one accept each. */
function accepted(truth: TcpTruth): Endpoint[] {
  return truth.endpoints.filter((e) => e.role === "server");
}

/** Every accepted connection appears exactly once, with the accepting PID and both ends. */
function checkAccepts(lines: Accept[], expected: Endpoint[], pid: number, what: string) {
  for (const e of expected) {
    const matches = lines.filter((l) => l.lport === e.lport && l.rport === e.rport);
    assertEquals(matches.length, 1, `${what}: accept of connection ${e.i}`);
    deepEqual(
      { ...matches[0], time: undefined, elapsed: undefined },
      {
        pid,
        comm: "python3",
        ip: e.ip,
        raddr: loopback(e.ip),
        rport: e.rport,
        laddr: loopback(e.ip),
        lport: e.lport,
        time: undefined,
        elapsed: undefined,
      },
      what,
    );
  }
  assertEquals(lines.filter((l) => l.pid === pid).length, expected.length, `${what}: no others`);
}

async function ourPrograms(): Promise<string[]> {
  return (await loadedProgramNames()).filter((n) => n.startsWith("tcpaccept_"));
}

/** `PERF`: a run that sends its records through perf buffers (the pre-5.8 fallback). */
const PERF = { BPFTK_EVENT_BUFFER: "perf" };

/** Starts the runs (text ones print a header; --json ones are waited for by program). */
async function startTools(
  argsList: string[][],
  envs: (Record<string, string> | undefined)[] = [],
): Promise<ToolProcess[]> {
  const tools = argsList.map((args, i) => new ToolProcess("tcpaccept", args, { env: envs[i] }));
  await Promise.all(
    tools.map((t, i) => argsList[i].includes("--json") ? undefined : t.waitForOutput(/PID/)),
  );
  await waitForPrograms("tcpaccept_acc", tools.length);
  return tools;
}

/** Whether the output has a line with the PID and both ports of each of these ends. */
function shows(stdout: string, pid: number, endpoints: { lport: number; rport: number }[]) {
  const lines = stdout.split("\n").map((l) => new Set(l.split(/[^0-9]+/)));
  return endpoints.every((e) =>
    lines.some((l) => l.has(String(pid)) && l.has(String(e.lport)) && l.has(String(e.rport)))
  );
}

async function stopWhenSeen(tools: ToolProcess[], seen: (t: ToolProcess) => boolean) {
  try {
    await waitFor(() => tools.every(seen), 5000, "every accept to be shown");
  } catch { /* the assertions say what is missing */ }
  for (const t of tools) t.kill("SIGINT");
  const results = await Promise.all(tools.map((t) => t.finish()));
  for (const r of results) {
    assertEquals(r.code, 0, r.stderr);
    assertEquals(lostInStderr(r.stderr), 0, r.stderr);
  }
  return results;
}

kernelTest(
  "tcpaccept: each accepted connection once, with the accepting PID and ports",
  async () => {
    assertEquals((await ourPrograms()).length, 0, "tcpaccept programs loaded before the test");
    const { port4, port6 } = listenerPorts();
    const workload = new TcpWorkload(port4, port6, PER_FAMILY, 50);
    const tools = await startTools([
      [],
      ["--json"],
      ["-T", "-t"],
      ["-p", String(workload.pid)],
      ["-P", String(port4)],
      ["-L", `${port6},9`],
      ["-4"],
      ["-6"],
      [],
    ], [...Array(8).fill(undefined), PERF]);
    const truth = await workload.run();
    const all = accepted(truth);
    const v4 = all.filter((e) => e.ip === 4), v6 = all.filter((e) => e.ip === 6);
    const expected = [all, all, all, all, v4, v6, v4, v6, all];
    const results = await stopWhenSeen(
      tools,
      (t) => shows(t.stdout, truth.serverPid, expected[tools.indexOf(t)]),
    );
    const [text, json, timed, byPid, byP, byL, only4, only6, perf] = results.map((r) => r.stdout);
    const pid = truth.serverPid;

    checkAccepts(parseText(text), all, pid, "text");
    checkAccepts(parseJson(json), all, pid, "--json");
    checkAccepts(parseText(perf), all, pid, "perf buffer");
    const timedLines = parseText(timed, { time: true, timestamp: true });
    checkAccepts(timedLines, all, pid, "-T -t");
    assert(timedLines.every((l) => /^\d\d:\d\d:\d\d$/.test(l.time!)), timed);
    assertEquals(timedLines[0].elapsed, 0, "-t counts from the first accept shown");
    assert(timedLines.every((l) => l.elapsed! >= 0 && l.elapsed! < 60), timed);

    const pidLines = parseText(byPid);
    checkAccepts(pidLines, all, pid, "-p");
    assert(pidLines.every((l) => l.pid === pid), "-p: every line is the process's");
    const portLines = parseText(byP);
    checkAccepts(portLines, v4, pid, "-P");
    assert(portLines.every((l) => l.lport === port4), "-P: every line has the port");
    const lLines = parseText(byL);
    checkAccepts(lLines, v6, pid, "-L");
    assert(lLines.every((l) => l.lport === port6 || l.lport === 9), "-L: the ports");
    const lines4 = parseText(only4), lines6 = parseText(only6);
    checkAccepts(lines4, v4, pid, "-4");
    checkAccepts(lines6, v6, pid, "-6");
    assert(lines4.every((l) => l.ip === 4 && !l.raddr.includes(":")), "-4: IPv4 only");
    assert(lines6.every((l) => l.ip === 6 && l.raddr.includes(":")), "-6: IPv6 only");
    await waitFor(async () => (await ourPrograms()).length === 0, 3000, "tcpaccept to unload");
  },
);

/**
 * In a private network namespace: a TCP connection accepted with the plain
 * accept(2) system call (glibc's accept() is accept4 underneath, so it is
 * called by number), then accepts that are not TCP connections: a Unix
 * stream socket's, and a non-blocking accept on an empty queue (EAGAIN).
 * Prints the TCP connection's ports.
 */
const ACCEPT_VARIANTS = String.raw`
import ctypes, fcntl, json, os, socket, struct, sys, tempfile
def loopback_up():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    flags = struct.unpack("16sh", fcntl.ioctl(s, 0x8913, struct.pack("16sh", b"lo", 0)))[1]
    fcntl.ioctl(s, 0x8914, struct.pack("16sh", b"lo", flags | 1))
    s.close()
loopback_up()
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
SYS_accept = 43
ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen(4)
sys.stdin.readline()
c = socket.create_connection(ls.getsockname())
fd = libc.syscall(SYS_accept, ls.fileno(), None, None)
assert fd >= 0, ctypes.get_errno()
conn = socket.socket(fileno=fd)
path = tempfile.mkdtemp() + "/sock"
us = socket.socket(socket.AF_UNIX); us.bind(path); us.listen(1)
uc = socket.socket(socket.AF_UNIX); uc.connect(path)
uconn, _ = us.accept()
ls.setblocking(False)
try:
    ls.accept()
    raise SystemExit("an empty queue accepted")
except BlockingIOError:
    pass
print(json.dumps({"lport": ls.getsockname()[1], "rport": c.getsockname()[1]}))
for s in (conn, c, ls, uconn, uc, us):
    s.close()
os.unlink(path); os.rmdir(os.path.dirname(path))
`;

kernelTest("tcpaccept: accept(2) shows; Unix-socket and failed accepts do not", async () => {
  const workload = new PausedWorkload("unshare", ["-n", "python3", "-c", ACCEPT_VARIANTS]);
  const tools = await startTools([["-p", String(workload.pid)]]);
  const run = await workload.run();
  assertEquals(run.code, 0, run.stderr);
  const truth = JSON.parse(run.stdout) as { lport: number; rport: number };
  const [result] = await stopWhenSeen(tools, (t) => shows(t.stdout, workload.pid, [truth]));
  deepEqual(parseText(result.stdout), [{
    time: undefined,
    elapsed: undefined,
    pid: workload.pid,
    comm: "python3",
    ip: 4,
    raddr: "127.0.0.1",
    rport: truth.rport,
    laddr: "127.0.0.1",
    lport: truth.lport,
  }]);
  await waitFor(async () => (await ourPrograms()).length === 0, 3000, "tcpaccept to unload");
});

for (
  const [args, pattern] of [
    [["-x"], /^tcpaccept: unknown option '-x'/],
    [["-4", "-6"], /^tcpaccept: -4 and -6 cannot be used together/],
    [["-P", "80", "-L", "81"], /^tcpaccept: -P and -L are the same option/],
    [["-P", "0"], /^tcpaccept: invalid port '0' in -P 0/],
    [["-p", "x"], /^tcpaccept: invalid PID 'x': not an integer/],
    [["1"], /^tcpaccept: unrecognized positional argument: '1'/],
  ] as [string[], RegExp][]
) {
  Deno.test(`tcpaccept ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("tcpaccept", args);
    assertEquals(code, 2);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(pattern.test(stderr), stderr);
  });
}

Deno.test("tcpaccept --help: USAGE and EXAMPLES under 80 columns, exit 0", async () => {
  const { code, stdout } = await runToolOnce("tcpaccept", ["-h"]);
  assertEquals(code, 0);
  assert(/^USAGE: tcpaccept /m.test(stdout), stdout);
  assert(/^EXAMPLES:/m.test(stdout), stdout);
  assert(stdout.split("\n").every((l) => l.length < 80));
});
