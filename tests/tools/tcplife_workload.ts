/**
 * The TCP workload tcplife's and tcpaccept's tests watch: loopback
 * connections with known byte counts, lifespans and owners, in a private
 * network namespace (`unshare -n`: its own loopback and port space, so fixed
 * listener ports are free and other tests' traffic cannot mix in).
 *
 * One Python process (the server: it listens on 127.0.0.1:PORT4 and
 * [::1]:PORT6 and accepts every connection) forks one client process per
 * connection. Client i connects, holds the connection idle for HOLD_MS,
 * sends its bytes (the first 4 say which client it is), and reads the
 * server's reply. Even connections: the
 * client closes first (the server's close follows the client's FIN); odd
 * ones: the server closes first, right after replying. Each process prints
 * what it knows as JSON lines.
 */
import { ok as assert } from "node:assert/strict";
import { PausedWorkload } from "../support/event_tools.ts";

const WORKLOAD = String.raw`
import fcntl, json, os, socket, struct, sys, threading, time
port4, port6, per_family, hold_ms = map(int, sys.argv[1:5])

def loopback_up():  # a new network namespace starts with lo down (no iproute2 needed)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 1
    flags = struct.unpack("16sh", fcntl.ioctl(s, SIOCGIFFLAGS, struct.pack("16sh", b"lo", 0)))[1]
    fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | IFF_UP))
    s.close()

def sizes(i):  # client -> server and server -> client bytes of connection i
    return 100 * 1024 + 1000 * i + 7, 300 * 1024 + 3000 * i + 11

def recv_exactly(s, n):
    data = b""
    while len(data) < n:
        d = s.recv(min(65536, n - len(data)))
        if not d:
            raise Exception("early EOF after %d of %d bytes" % (len(data), n))
        data += d
    return data

def wait_eof(s):
    while s.recv(65536):
        pass

def emit(obj):
    os.write(1, (json.dumps(obj) + "\n").encode())

def serve(conn, family, port, peer):
    i = struct.unpack("!I", recv_exactly(conn, 4))[0]  # the client says which it is
    emit({"role": "server", "pid": os.getpid(), "i": i, "ip": 4 if family == socket.AF_INET else 6,
          "lport": port, "rport": peer[1]})
    up, down = sizes(i)
    recv_exactly(conn, up - 4)
    conn.sendall(b"s" * down)
    if i % 2 == 0:
        wait_eof(conn)  # the client closes first
    conn.close()

def client(family, host, port, i):
    up, down = sizes(i)
    c = socket.socket(family, socket.SOCK_STREAM)
    c.connect((host, port))
    emit({"role": "client", "pid": os.getpid(), "i": i, "ip": 4 if family == socket.AF_INET else 6,
          "lport": c.getsockname()[1], "rport": port, "up": up, "down": down})
    time.sleep(hold_ms / 1000)
    c.sendall(struct.pack("!I", i) + b"c" * (up - 4))
    recv_exactly(c, down)
    if i % 2 == 1:
        wait_eof(c)  # the server closes first
    c.close()

loopback_up()
listeners = []
for family, host, port in ((socket.AF_INET, "127.0.0.1", port4), (socket.AF_INET6, "::1", port6)):
    ls = socket.socket(family, socket.SOCK_STREAM)
    ls.bind((host, port))
    ls.listen(64)
    listeners.append((family, host, port, ls))
sys.stdin.readline()  # "go": the tracers are attached

# Every client first, so that no client inherits a connection of the server's
# (a fork copies the descriptors: the last copy closed is the one that ends a socket).
children, threads = [], []
n = 0
for family, host, port, ls in listeners:
    for _ in range(per_family):
        pid = os.fork()
        if pid == 0:
            try:
                for l in listeners:
                    l[3].close()
                client(family, host, port, n)
                os._exit(0)
            except BaseException as e:
                os.write(2, ("client %d: %r\n" % (n, e)).encode())
                os._exit(1)
        children.append(pid)
        n += 1
for family, host, port, ls in listeners:
    for _ in range(per_family):
        conn, peer = ls.accept()
        t = threading.Thread(target=serve, args=(conn, family, port, peer))
        t.start()
        threads.append(t)
for t in threads:
    t.join()
failed = sum(1 for pid in children if os.waitpid(pid, 0)[1] != 0)
for _, _, _, ls in listeners:
    ls.close()
sys.exit(1 if failed else 0)
`;

/** One end of one connection, as the workload saw it. */
export interface Endpoint {
  role: "client" | "server";
  /** The process that owns this end. */
  pid: number;
  /** Connection number (the same on both ends). */
  i: number;
  ip: 4 | 6;
  lport: number;
  rport: number;
  /** Client side only: bytes the client sends and receives. */
  up?: number;
  down?: number;
}

/** What the workload did: both ends of every connection. */
export interface TcpTruth {
  serverPid: number;
  endpoints: Endpoint[];
}

/** Listener ports for one run: below the ephemeral range, so no client port can equal them. */
export function listenerPorts(): { port4: number; port6: number } {
  const port4 = 20000 + Math.floor(Math.random() * 5000) * 2;
  return { port4, port6: port4 + 1 };
}

/** The workload, started paused: `pid` is the server's; `run()` lets it go. */
export class TcpWorkload {
  readonly #process: PausedWorkload;

  constructor(readonly port4: number, readonly port6: number, perFamily: number, holdMs: number) {
    this.#process = new PausedWorkload("unshare", [
      "-n",
      "python3",
      "-c",
      WORKLOAD,
      String(port4),
      String(port6),
      String(perFamily),
      String(holdMs),
    ]);
  }

  /** The server's PID (unshare execs python3 in place). */
  get pid(): number {
    return this.#process.pid;
  }

  /** Runs the connections; returns both ends of each, with byte counts on the client side. */
  async run(): Promise<TcpTruth> {
    const { code, stdout, stderr } = await this.#process.run();
    assert(code === 0, `workload failed (${code}): ${stderr}`);
    const endpoints = stdout.trim().split("\n").map((l) => JSON.parse(l) as Endpoint);
    const clients = new Map(endpoints.filter((e) => e.role === "client").map((e) => [e.i, e]));
    for (const e of endpoints) {
      if (e.role !== "server") continue;
      const c = clients.get(e.i)!;
      assert(c && c.rport === e.lport && c.lport === e.rport, `ends of connection ${e.i} differ`);
    }
    return { serverPid: this.pid, endpoints };
  }
}

/** Bytes one end sent (TX) and received (RX). */
export function endpointBytes(e: Endpoint, truth: TcpTruth): { tx: number; rx: number } {
  const client = truth.endpoints.find((c) => c.role === "client" && c.i === e.i)!;
  return e.role === "client"
    ? { tx: client.up!, rx: client.down! }
    : { tx: client.down!, rx: client.up! };
}
