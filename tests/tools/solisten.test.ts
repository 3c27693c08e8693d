/**
 * solisten against listens whose truth is known, in a private network
 * namespace: TCP on 127.0.0.1:PORT with backlog 5, TCP on [::1]:PORT+1 with
 * backlog 128, TCP on a socket never bound (the kernel picks its port at
 * listen: the workload reads it back) with backlog 7, and a listen on a UDP
 * socket that fails with EOPNOTSUPP (RET -95); and listens that must never
 * show: a Unix socket's, and one on a descriptor that is not a socket.
 *
 * No reference runs here: libbpf-tools solisten needs fexit or kprobes on
 * inet_listen ("failed to create kprobe 'inet_listen+0x0' perf event").
 */
import { deepEqual, equal as assertEquals, ok as assert } from "node:assert/strict";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { lostInStderr, PausedWorkload, waitForPrograms } from "../support/event_tools.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";
import { listenerPorts } from "./tcplife_workload.ts";

const WORKLOAD = String.raw`
import ctypes, errno, fcntl, json, os, socket, struct, sys, tempfile
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a new namespace's lo is down
flags = struct.unpack("16sh", fcntl.ioctl(s, 0x8913, struct.pack("16sh", b"lo", 0)))[1]
fcntl.ioctl(s, 0x8914, struct.pack("16sh", b"lo", flags | 1))
s.close()
sys.stdin.readline()
a = socket.socket(socket.AF_INET); a.bind(("127.0.0.1", port)); a.listen(5)
b = socket.socket(socket.AF_INET6); b.bind(("::1", port + 1)); b.listen(128)
c = socket.socket(socket.AF_INET); c.listen(7)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    u.listen(3)
    raise SystemExit("a UDP socket listened")
except OSError as e:
    assert e.errno == errno.EOPNOTSUPP
path = tempfile.mkdtemp() + "/sock"
x = socket.socket(socket.AF_UNIX); x.bind(path); x.listen(2)
libc = ctypes.CDLL(None, use_errno=True)
r, w = os.pipe()
assert libc.listen(r, 1) == -1 and ctypes.get_errno() == errno.ENOTSOCK
print(json.dumps({"pid": os.getpid(), "auto": c.getsockname()[1]}))
for s in (a, b, c, u, x):
    s.close()
os.unlink(path); os.rmdir(os.path.dirname(path))
`;

/** One solisten line. */
interface Line {
  pid: number;
  comm: string;
  ret: number;
  backlog: number;
  proto: string;
  port: number;
  addr: string;
}

const HEADER = "PID     COMM             RET BACKLOG PROTO PORT  ADDR";

function parseText(stdout: string, timestamp = false): Line[] {
  const lines = stdout.split("\n").filter((l) => l !== "");
  assertEquals(lines[0].trimEnd(), (timestamp ? "TIME(s)  " : "") + HEADER);
  return lines.slice(1).map((l) => {
    const f = l.trim().split(/\s+/);
    if (timestamp) assert(/^\d\d:\d\d:\d\d$/.test(f.shift()!), l);
    const [pid, comm, ret, backlog, proto, port, addr] = f;
    return {
      pid: Number(pid),
      comm,
      ret: Number(ret),
      backlog: Number(backlog),
      proto,
      port: Number(port),
      addr,
    };
  });
}

async function ourPrograms(): Promise<string[]> {
  return (await loadedProgramNames()).filter((n) => n.startsWith("solisten_"));
}

kernelTest("solisten: each listen once, with its backlog, port and result", async () => {
  assertEquals((await ourPrograms()).length, 0, "solisten programs loaded before the test");
  const port = listenerPorts().port4;
  const workload = new PausedWorkload("unshare", ["-n", "python3", "-c", WORKLOAD, String(port)]);
  const runs = [[], ["--json"], ["-t", "-p", String(workload.pid)]];
  const tools = runs.map((args) => new ToolProcess("solisten", args));
  await waitForPrograms("solisten_exit", tools.length, 45_000);
  const run = await workload.run();
  assertEquals(run.code, 0, run.stderr);
  const { pid, auto } = JSON.parse(run.stdout) as { pid: number; auto: number };
  await new Promise((r) => setTimeout(r, 500));
  for (const t of tools) t.kill("SIGINT");
  const results = await Promise.all(tools.map((t) => t.finish()));
  for (const r of results) {
    assertEquals(r.code, 0, r.stderr);
    assertEquals(lostInStderr(r.stderr), 0, r.stderr);
  }
  const [text, json, byPid] = results.map((r) => r.stdout);
  const line = (ret: number, backlog: number, proto: string, p: number, addr: string): Line => ({
    pid,
    comm: "python3",
    ret,
    backlog,
    proto,
    port: p,
    addr,
  });
  const expected = [
    line(0, 5, "TCPv4", port, "127.0.0.1"),
    line(0, 128, "TCPv6", port + 1, "::1"),
    line(0, 7, "TCPv4", auto, "0.0.0.0"),
    line(-95, 3, "UDPv4", 0, "0.0.0.0"),
  ];
  const mine = (lines: Line[]) => lines.filter((l) => l.pid === pid);
  deepEqual(mine(parseText(text)), expected, "text");
  deepEqual(
    mine(json.trim().split("\n").map((l) => JSON.parse(l))).map((j) => ({ ...j, time: undefined })),
    expected.map((l) => ({ ...l, time: undefined })),
    "--json",
  );
  deepEqual(parseText(byPid, true), expected, "-t -p: only the process");
  await waitFor(async () => (await ourPrograms()).length === 0, 3000, "solisten to unload");
});

for (
  const [args, pattern] of [
    [["-x"], /^solisten: unknown option '-x'/],
    [["-p", "x"], /^solisten: invalid PID 'x': not an integer/],
    [["1"], /^solisten: unrecognized positional argument: '1'/],
  ] as [string[], RegExp][]
) {
  Deno.test(`solisten ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("solisten", args);
    assertEquals(code, 2);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(pattern.test(stderr), stderr);
  });
}

Deno.test("solisten --help: USAGE and EXAMPLES under 80 columns, exit 0", async () => {
  const { code, stdout } = await runToolOnce("solisten", ["-h"]);
  assertEquals(code, 0);
  assert(/^USAGE: solisten /m.test(stdout), stdout);
  assert(/^EXAMPLES:/m.test(stdout), stdout);
  assert(stdout.split("\n").every((l) => l.length < 80));
});
