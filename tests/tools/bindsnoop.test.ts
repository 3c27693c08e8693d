/**
 * bindsnoop against binds whose truth is known, in a private network
 * namespace (its ports are all free): 5 plain TCP binds to 127.0.0.1 on
 * known ports; a TCP bind with SO_REUSEADDR (R), a UDP bind to ::1 with
 * SO_REUSEPORT (r), a TCP bind to 0.0.0.0 with IP_FREEBIND and
 * IP_BIND_ADDRESS_NO_PORT (F, N); one bind that fails with EADDRINUSE
 * (shown only with -x, RET -98); and binds that must never show: a Unix
 * socket's, and one on a descriptor that is not a socket (ENOTSOCK).
 *
 * No reference runs here: libbpf-tools bindsnoop needs kprobes on
 * inet_bind/inet6_bind and fails to load on this kernel.
 */
import { deepEqual, equal as assertEquals, ok as assert } from "node:assert/strict";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { lostInStderr, PausedWorkload, waitForPrograms } from "../support/event_tools.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";
import { listenerPorts } from "./tcplife_workload.ts";

const WORKLOAD = String.raw`
import errno, fcntl, json, os, socket, struct, sys, tempfile
base = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a new namespace's lo is down
flags = struct.unpack("16sh", fcntl.ioctl(s, 0x8913, struct.pack("16sh", b"lo", 0)))[1]
fcntl.ioctl(s, 0x8914, struct.pack("16sh", b"lo", flags | 1))
s.close()
sys.stdin.readline()
keep = []
def bind(family, kind, addr, opts=()):
    s = socket.socket(family, kind)
    for level, name in opts:
        s.setsockopt(level, name, 1)
    s.bind(addr)
    keep.append(s)
for i in range(5):
    bind(socket.AF_INET, socket.SOCK_STREAM, ("127.0.0.1", base + i))
bind(socket.AF_INET, socket.SOCK_STREAM, ("127.0.0.1", base + 5),
     [(socket.SOL_SOCKET, socket.SO_REUSEADDR)])
bind(socket.AF_INET6, socket.SOCK_DGRAM, ("::1", base + 6),
     [(socket.SOL_SOCKET, socket.SO_REUSEPORT)])
bind(socket.AF_INET, socket.SOCK_STREAM, ("0.0.0.0", base + 7),
     [(socket.SOL_IP, 15), (socket.SOL_IP, 24)])  # IP_FREEBIND, IP_BIND_ADDRESS_NO_PORT
keep[0].listen(1)
try:
    bind(socket.AF_INET, socket.SOCK_STREAM, ("127.0.0.1", base))
    raise SystemExit("a port in use was bound twice")
except OSError as e:
    assert e.errno == errno.EADDRINUSE
path = tempfile.mkdtemp() + "/sock"
bind(socket.AF_UNIX, socket.SOCK_STREAM, path)
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
r, w = os.pipe()
assert libc.bind(r, None, 0) == -1 and ctypes.get_errno() == errno.ENOTSOCK
for s in keep:
    s.close()
os.unlink(path); os.rmdir(os.path.dirname(path))
print(os.getpid())
`;

/** One bindsnoop line. */
interface Line {
  pid: number;
  comm: string;
  ret: number;
  proto: string;
  opts: string;
  if: number;
  port: number;
  addr: string;
}

const HEADER = "PID     COMM             RET PROTO OPTS  IF   PORT  ADDR";

function parseText(stdout: string, timestamp = false): Line[] {
  const lines = stdout.split("\n").filter((l) => l !== "");
  assertEquals(lines[0].trimEnd(), (timestamp ? "TIME(s)  " : "") + HEADER);
  return lines.slice(1).map((l) => {
    const f = l.trim().split(/\s+/);
    if (timestamp) assert(/^\d\d:\d\d:\d\d$/.test(f.shift()!), l);
    const [pid, comm, ret, proto, opts, dev, port, addr] = f;
    return {
      pid: Number(pid),
      comm,
      ret: Number(ret),
      proto,
      opts,
      if: Number(dev),
      port: Number(port),
      addr,
    };
  });
}

/** The binds the workload made, in order (the failed one last). */
function expected(base: number, pid: number): Line[] {
  const line = (port: number, proto: string, opts: string, addr: string, ret = 0): Line => ({
    pid,
    comm: "python3",
    ret,
    proto,
    opts,
    if: 0,
    port,
    addr,
  });
  return [
    ...[0, 1, 2, 3, 4].map((i) => line(base + i, "TCP", ".....", "127.0.0.1")),
    line(base + 5, "TCP", "...R.", "127.0.0.1"),
    line(base + 6, "UDP", "....r", "::1"),
    line(base + 7, "TCP", "F.N..", "0.0.0.0"),
    line(base, "TCP", ".....", "127.0.0.1", -98),
  ];
}

async function ourPrograms(): Promise<string[]> {
  return (await loadedProgramNames()).filter((n) => n.startsWith("bindsnoop_"));
}

kernelTest("bindsnoop: each bind once, with its port, options and result", async () => {
  assertEquals((await ourPrograms()).length, 0, "bindsnoop programs loaded before the test");
  const base = listenerPorts().port4;
  const workload = new PausedWorkload("unshare", ["-n", "python3", "-c", WORKLOAD, String(base)]);
  const pid = workload.pid;
  const runs = [[], ["-x"], ["--json", "-x"], ["-t", "-p", String(pid)], ["-P", `${base + 6},9`]];
  const tools = runs.map((args) => new ToolProcess("bindsnoop", args));
  await waitForPrograms("bindsnoop_exit", tools.length, 45_000);
  const run = await workload.run();
  assertEquals(run.code, 0, run.stderr);
  await new Promise((r) => setTimeout(r, 500));
  for (const t of tools) t.kill("SIGINT");
  const results = await Promise.all(tools.map((t) => t.finish()));
  for (const r of results) {
    assertEquals(r.code, 0, r.stderr);
    assertEquals(lostInStderr(r.stderr), 0, r.stderr);
  }
  const [text, failed, json, byPid, byPort] = results.map((r) => r.stdout);
  const all = expected(base, pid);
  const mine = (lines: Line[]) => lines.filter((l) => l.pid === pid);
  deepEqual(mine(parseText(text)), all.slice(0, -1), "default: successful binds only");
  deepEqual(mine(parseText(failed)), all, "-x: the failed bind too");
  deepEqual(
    mine(json.trim().split("\n").map((l) => JSON.parse(l))).map((j) => ({ ...j, time: undefined })),
    all.map((l) => ({ ...l, time: undefined })),
    "--json -x",
  );
  const pidLines = parseText(byPid, true);
  assert(pidLines.every((l) => l.pid === pid), "-p: only the process");
  deepEqual(pidLines, all.slice(0, -1), "-t -p");
  const portLines = parseText(byPort);
  assert(portLines.every((l) => l.port === base + 6 || l.port === 9), "-P: only the ports");
  deepEqual(mine(portLines), [all[6]], "-P");
  await waitFor(async () => (await ourPrograms()).length === 0, 3000, "bindsnoop to unload");
});

for (
  const [args, pattern] of [
    [["-X"], /^bindsnoop: unknown option '-X'/],
    [["-P", "0"], /^bindsnoop: invalid port '0' in -P 0/],
    [["-p", "x"], /^bindsnoop: invalid PID 'x': not an integer/],
    [["1"], /^bindsnoop: unrecognized positional argument: '1'/],
  ] as [string[], RegExp][]
) {
  Deno.test(`bindsnoop ${args.join(" ")}: usage error, one line, exit 2`, async () => {
    const { code, stdout, stderr } = await runToolOnce("bindsnoop", args);
    assertEquals(code, 2);
    assertEquals(stdout, "");
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(pattern.test(stderr), stderr);
  });
}

Deno.test("bindsnoop --help: USAGE and EXAMPLES under 80 columns, exit 0", async () => {
  const { code, stdout } = await runToolOnce("bindsnoop", ["-h"]);
  assertEquals(code, 0);
  assert(/^USAGE: bindsnoop /m.test(stdout), stdout);
  assert(/^EXAMPLES:/m.test(stdout), stdout);
  assert(stdout.split("\n").every((l) => l.length < 80));
});
