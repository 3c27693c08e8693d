/**
 * The active-open workload of tcpconnect's and tcpconnlat's tests: connects
 * whose ends and owners are known, in a private network namespace
 * (`unshare -n`: its own loopback, so other tests' traffic cannot mix in).
 *
 * One Python process (its PID is the workload's) listens on 127.0.0.1:PORT4
 * and [::1]:PORT6, then, once told "go":
 * - connects N4 times to PORT4 and N6 times to PORT6 (blocking connects:
 *   the SYN-ACK comes from the kernel, whether or not anyone accepts);
 * - connects once to a closed port (PORT4 + 2: refused by a reset);
 * - forks a child that becomes UID 65534 and connects once to PORT4;
 * - connects once to a listener whose accept queue is full (listen(0) and
 *   one connection it never accepts: the kernel drops further SYNs), non
 *   blocking: connect() returns EINPROGRESS with the SYN unanswered; the
 *   socket stays in SYN_SENT for HOLD_MS, then is closed;
 * - connects once ("slow") to a listener whose accept queue is full for its
 *   first 300 ms: the first SYN is dropped, the one retransmitted after the
 *   initial RTO (1 s) is answered; the workload times that connect() too.
 * It prints one JSON line per connect: who, which ends, and what happened.
 */
import { ok as assert } from "node:assert/strict";
import { PausedWorkload } from "../support/event_tools.ts";

const WORKLOAD = String.raw`
import encodings.idna, errno, fcntl, json, os, socket, struct, sys, threading, time  # idna: before setuid
port4, port6, n4, n6, hold_ms = map(int, sys.argv[1:6])

def loopback_up():  # a new network namespace starts with lo down (no iproute2 needed)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    flags = struct.unpack("16sh", fcntl.ioctl(s, 0x8913, struct.pack("16sh", b"lo", 0)))[1]
    fcntl.ioctl(s, 0x8914, struct.pack("16sh", b"lo", flags | 1))
    s.close()

def emit(kind, s, ip, dport, pid=None, uid=0):
    print(json.dumps({"kind": kind, "pid": pid or os.getpid(), "uid": uid, "ip": ip,
                      "sport": s.getsockname()[1], "dport": dport}), flush=True)

loopback_up()
l4 = socket.socket(socket.AF_INET); l4.bind(("127.0.0.1", port4)); l4.listen(64)
l6 = socket.socket(socket.AF_INET6); l6.bind(("::1", port6)); l6.listen(64)
full = socket.socket(socket.AF_INET); full.bind(("127.0.0.1", 0)); full.listen(0)
full_port = full.getsockname()[1]
sys.stdin.readline()  # "go": the tracers are attached

keep = []
for family, host, port, n, ip in ((socket.AF_INET, "127.0.0.1", port4, n4, 4),
                                  (socket.AF_INET6, "::1", port6, n6, 6)):
    for _ in range(n):
        c = socket.socket(family)
        c.connect((host, port))
        emit("established", c, ip, port)
        keep.append(c)

refused = socket.socket(socket.AF_INET)
refused.bind(("127.0.0.1", 0))  # a bound port outlives the reset: it is known afterwards
try:
    refused.connect(("127.0.0.1", port4 + 2))
    raise SystemExit("a closed port accepted")
except ConnectionRefusedError:
    pass
emit("refused", refused, 4, port4 + 2)

r, w = os.pipe()
child = os.fork()
if child == 0:
    try:
        os.close(r)
        os.setuid(65534)
        c = socket.create_connection(("127.0.0.1", port4))
        os.write(w, json.dumps({"kind": "established", "pid": os.getpid(), "uid": 65534, "ip": 4,
                                "sport": c.getsockname()[1], "dport": port4}).encode())
        os._exit(0)
    except BaseException as e:
        os.write(2, ("child: %r\n" % e).encode())
        os._exit(1)
os.close(w)
line = os.read(r, 4096).decode()
if os.waitpid(child, 0)[1] != 0:
    raise SystemExit("the UID 65534 child failed")
print(line, flush=True)

first = socket.create_connection(("127.0.0.1", full_port))  # fills the accept queue
emit("established", first, 4, full_port)
syn = socket.socket(socket.AF_INET)
syn.setblocking(False)
assert syn.connect_ex(("127.0.0.1", full_port)) == errno.EINPROGRESS
emit("syn_sent", syn, 4, full_port)
time.sleep(hold_ms / 1000)

# A slow connect: its first SYN finds the accept queue full and is dropped; the
# queue is emptied 300 ms later, so the SYN retransmitted after the initial
# RTO (1 s) is answered.
slow_l = socket.socket(socket.AF_INET); slow_l.bind(("127.0.0.1", 0)); slow_l.listen(0)
slow_port = slow_l.getsockname()[1]
filler = socket.create_connection(("127.0.0.1", slow_port))
emit("established", filler, 4, slow_port)
threading.Timer(0.3, lambda: slow_l.accept()[0].close()).start()
slow = socket.socket(socket.AF_INET)
t0 = time.monotonic()
slow.connect(("127.0.0.1", slow_port))
connect_ms = (time.monotonic() - t0) * 1000
print(json.dumps({"kind": "slow", "pid": os.getpid(), "uid": 0, "ip": 4,
                  "sport": slow.getsockname()[1], "dport": slow_port, "ms": connect_ms}), flush=True)
for s in keep + [refused, first, syn, l4, l6, full, filler, slow, slow_l]:
    s.close()
`;

/** One connect, as the workload saw it. */
export interface ConnectTruth {
  kind: "established" | "refused" | "syn_sent" | "slow";
  pid: number;
  uid: number;
  ip: 4 | 6;
  sport: number;
  dport: number;
  /** "slow": how long connect() took, as the workload timed it (ms). */
  ms?: number;
}

/** The workload, started paused: `pid` is the connecting process's; `run()` lets it go. */
export class ConnectWorkload {
  readonly #process: PausedWorkload;

  constructor(
    readonly port4: number,
    readonly port6: number,
    n4: number,
    n6: number,
    holdMs = 300,
  ) {
    this.#process = new PausedWorkload("unshare", [
      "-n",
      "python3",
      "-c",
      WORKLOAD,
      ...[port4, port6, n4, n6, holdMs].map(String),
    ]);
  }

  /** The main process's PID (unshare execs python3 in place). */
  get pid(): number {
    return this.#process.pid;
  }

  /** Runs the connects; returns each one. */
  async run(): Promise<ConnectTruth[]> {
    const { code, stdout, stderr } = await this.#process.run();
    assert(code === 0, `workload failed (${code}): ${stderr}`);
    return stdout.trim().split("\n").map((l) => JSON.parse(l) as ConnectTruth);
  }
}
