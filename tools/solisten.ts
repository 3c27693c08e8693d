#!/usr/bin/env -S deno run -A
/**
 * solisten: listen() calls on IPv4 and IPv6 sockets, one line each with the
 * process, the result, the backlog asked for, the protocol, and the local
 * port and address the socket listens on.
 *
 * Events. libbpf-tools solisten uses fexit (or a kprobe pair) on
 * inet_listen; this kernel has neither. The same call is at
 * syscalls:sys_enter_listen (fd and backlog, kept per thread) and
 * syscalls:sys_exit_listen (the result): there the socket is
 * current->files->fdt->fd[fd]->private_data->sk (lib/dsl/socket_fd.ts), and
 * its local port (inet_sport: a socket listened on unbound gets one now) and
 * address are read after the call, as libbpf-tools reads them at
 * inet_listen's return. Only AF_INET/AF_INET6 sockets show (inet_listen
 * sees only those); a listen that fails before reaching a socket (EBADF,
 * ENOTSOCK) does not. PROTO is TCPv4/TCPv6 (UDPv4... for a listen on a
 * datagram socket, which fails with EOPNOTSUPP), from sk_type and the family.
 *
 * Output as libbpf-tools solisten (-t adds the time of day, under
 * libbpf-tools' TIME(s) heading); --json one object per listen.
 *
 *     # deno run -A tools/solisten.ts
 *     PID     COMM             RET BACKLOG PROTO PORT  ADDR
 *     3643474 python3          0   4096    TCPv4 8080  127.0.0.1
 *     3643476 nginx            0   511     TCPv6 80    ::
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import { eventTool } from "../lib/cli/drivers/events.ts";
import { flag, option, pidValue } from "../lib/cli/flags.ts";
import { type EventsDef, reserve, submit } from "../lib/dsl/events.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import { type Probe, tracepoint } from "../lib/dsl/program.ts";
import { r0, r1, r10, r7, r8, r9 } from "../lib/dsl/registers.ts";
import { char, defineSchema } from "../lib/dsl/schema.ts";
import * as sock from "../lib/dsl/sock.ts";
import { currentSocketOfFd } from "../lib/dsl/socket_fd.ts";
import { escapeText } from "../lib/format/escape.ts";
import { AF_INET, AF_INET6 } from "../lib/format/inet.ts";
import { formatTimeOfDay } from "../lib/format/time.ts";
import { requireVmlinuxBtf } from "../lib/kernel/features.ts";

const EBADF = 9, ENOTSOCK = 88;
const SOCK_STREAM = 1, SOCK_DGRAM = 2;

/** What the operator asked for. */
interface Options {
  timestamp: boolean;
  pid?: number;
}

// --- BPF side ---------------------------------------------------------------

/** What sys_enter_listen saw, by thread. */
const listenArgs = defineSchema("listen_args", { fd: "u64", backlog: "u64" });
const pending = defineMap({
  name: "listens",
  type: "hash",
  keySize: 4,
  valueSize: listenArgs.size,
  maxEntries: 10240,
});

/** One listen, as sent to user space. */
const listenEvent = defineSchema("listen_event", {
  comm: char(16),
  ...sock.sockEndpointFields,
  pid: "u32",
  ret: "s32",
  backlog: "s32",
  type: "u16",
});

function enterProgram(o: Options): Probe {
  const p = tracepoint("syscalls", "sys_enter_listen", { name: "solisten_ent" });
  const tid = p.stack(4), args = p.stack(listenArgs.size);
  if (o.pid !== undefined) p.filterCurrentTgid(o.pid);
  p.ctx(r1, "fd").store("u64", r10, args + listenArgs.offset("fd"), r1);
  p.ctx(r1, "backlog").store("u64", r10, args + listenArgs.offset("backlog"), r1);
  p.call("get_current_pid_tgid").store("u32", r10, tid, r0);
  p.update(pending, tid, args);
  return p.ret(0);
}

function exitProgram(ch: EventsDef): Probe {
  const p = tracepoint("syscalls", "sys_exit_listen", { name: "solisten_exit" });
  const tid = p.stack(4), backlog = p.stack(8), ret = p.stack(8), done = p.label();
  p.call("get_current_pid_tgid").store("u32", r10, tid, r0);
  p.lookup(pending, tid).jumpIf(r0, "==", 0, done);
  listenArgs.load(p, r9, r0, "fd"); // r9: the fd
  listenArgs.load(p, r1, r0, "backlog");
  p.store("u64", r10, backlog, r1);
  p.delete(pending, tid);
  p.ctx(r1, "ret").store("u64", r10, ret, r1);
  p.jumpIf(r1, "==", -EBADF, done).jumpIf(r1, "==", -ENOTSOCK, done);
  currentSocketOfFd(p, r7, r9, done); // r7: the sock
  p.field(r1, r7, "sock", "__sk_common.skc_family");
  p.if(r1, "!=", AF_INET, () => p.jumpIf(r1, "!=", AF_INET6, done));
  reserve(p, ch, r8, done); // r8: the record
  p.load(r1, "u64", r10, ret);
  listenEvent.store(p, r8, "ret", r1);
  p.load(r1, "u64", r10, backlog);
  listenEvent.store(p, r8, "backlog", r1);
  p.field(r1, r7, "sock", "sk_type");
  listenEvent.store(p, r8, "type", r1);
  sock.storeSockEndpoints(p, listenEvent, r8, r7);
  p.call("get_current_pid_tgid").rsh(r0, 32);
  listenEvent.store(p, r8, "pid", r0);
  listenEvent.currentComm(p, r8, "comm");
  submit(p, ch, r8);
  p.bind(done);
  return p.ret(0);
}

function buildPrograms(o: Options, ch: EventsDef) {
  requireVmlinuxBtf();
  return [enterProgram(o), exitProgram(ch)].map((p) => p.build());
}

// --- user side --------------------------------------------------------------

/** One listen as the user side sees it. */
function decodeListen(data: Uint8Array) {
  const e = listenEvent.decode(data);
  const ends = sock.decodeSockEndpoints(e);
  const kind = e.type === SOCK_STREAM ? "TCP" : e.type === SOCK_DGRAM ? "UDP" : "UNK";
  return {
    pid: e.pid,
    comm: e.comm,
    ret: e.ret,
    backlog: e.backlog,
    proto: `${kind}v${ends.ip}`,
    port: ends.lport,
    addr: ends.laddr,
  };
}

function header(o: Options): string {
  return (o.timestamp ? "TIME(s)".padEnd(8) + " " : "") +
    `${"PID".padEnd(7)} ${"COMM".padEnd(16)} RET BACKLOG PROTO PORT  ${"ADDR".padEnd(32)}\n`;
}

function formatLine(data: Uint8Array, o: Options): string {
  const l = decodeListen(data);
  return (o.timestamp ? formatTimeOfDay(new Date()).padStart(8) + " " : "") +
    `${String(l.pid).padEnd(7)} ${escapeText(l.comm).padEnd(16)} ${String(l.ret).padEnd(3)} ` +
    `${String(l.backlog).padEnd(7)} ${l.proto.padEnd(5)} ${String(l.port).padEnd(5)} ` +
    `${l.addr.padEnd(32)}\n`;
}

export const tool = eventTool({
  name: "solisten",
  summary: "Trace IPv4 and IPv6 listen syscalls.",
  examples: [
    ["solisten", "trace listen syscalls"],
    ["solisten -t", "output with timestamp"],
    ["solisten -p 1216", "only trace PID 1216"],
  ],
  flags: {
    timestamp: flag("include timestamp on output", "t"),
    pid: option("PID", "process ID to trace", pidValue, { short: "p" }),
  },
  variants: [["-p", "1"]],
}, {
  recordSize: listenEvent.size,
  ringBytes: 1 << 20,
  build: buildPrograms,
  header,
  text: (data, o) => formatLine(data, o),
  json: (data) => decodeListen(data),
});

if (import.meta.main) await tool.main();
