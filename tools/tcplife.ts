#!/usr/bin/env -S deno run -A
/**
 * tcplife: TCP sessions as they close, one line each with the owning
 * process, both ends, the bytes sent and received, and how long the session
 * lived. Cheap: nothing is traced per packet, only TCP state changes.
 *
 * Events: sock:inet_sock_set_state as a BTF-typed tracepoint (the struct
 * sock * comes with it), as bcc's and libbpf-tools' tcplife use the plain
 * tracepoint. Per socket, as the originals do:
 * - the birth time at its first state before FIN_WAIT1 (SYN_SENT on the
 *   active side, SYN_RECV on the passive side; kept from the first one, as
 *   tcplife.bt does);
 * - the process that owns it, taken on the state changes made from a
 *   system call: SYN_SENT (connect), LAST_ACK (close after the peer's FIN)
 *   and FIN_WAIT1 (close or shutdown first; bcc does not cache it there, so
 *   it shows whoever the last packet interrupted when the server closes
 *   first). With none of those seen, the current process at TCP_CLOSE.
 * - at TCP_CLOSE: tcp_sock bytes_acked (TX) and bytes_received (RX), as
 *   tcp_get_info() reports them, and the ends from sk->__sk_common.
 * Records go through a ring buffer (perf buffer before 5.8), lost ones are
 * counted and reported. Filters (-p, -L, -D) apply at TCP_CLOSE, so a
 * connect that has no local port yet at SYN_SENT still counts.
 *
 * Output as bcc tcplife (TX_KB/RX_KB in whole KiB, MS with two decimals);
 * -w wide (addresses in 39 columns, as libbpf-tools -w), -s CSV; --json one
 * object per session with the same numbers (and
 * the exact bytes).
 *
 *     # deno run -A tools/tcplife.ts
 *     PID   COMM       LADDR           LPORT RADDR           RPORT TX_KB RX_KB MS
 *     22597 recordProg 127.0.0.1       46644 127.0.0.1       28527     0     0 0.23
 *     3277  redis-serv 127.0.0.1       28527 127.0.0.1       46644     0     0 0.28
 *     22598 curl       100.66.3.172    61620 52.205.89.26    80        0     1 91.79
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import { eventTool } from "../lib/cli/drivers/events.ts";
import { flag, option, pidValue } from "../lib/cli/flags.ts";
import { portList } from "../lib/cli/ports.ts";
import * as tcp from "../lib/cli/tcp_tools.ts";
import { type EventsDef, reserve, submit } from "../lib/dsl/events.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import { type Probe, tpBtf } from "../lib/dsl/program.ts";
import { r0, r1, r10, r7, r8, r9, type Reg } from "../lib/dsl/registers.ts";
import { char, defineSchema } from "../lib/dsl/schema.ts";
import * as sock from "../lib/dsl/sock.ts";
import { escapeText } from "../lib/format/escape.ts";
import { requireVmlinuxBtf } from "../lib/kernel/features.ts";

const IPPROTO_TCP = 6;
const TCP_SYN_SENT = 2;
const TCP_FIN_WAIT1 = 4;
const TCP_CLOSE = 7;
const TCP_LAST_ACK = 9;
const BPF_NOEXIST = 1;
/** Sockets followed at once (as the originals' birth/idents maps). */
const MAX_SESSIONS = 10240;

/** What the operator asked for. */
interface Options {
  time: boolean;
  timestamp: boolean;
  wide: boolean;
  csv: boolean;
  pid?: number;
  localPorts?: number[];
  remotePorts?: number[];
  /** Only sockets of this address family (AF_INET / AF_INET6). */
  family?: number;
}

// --- BPF side ---------------------------------------------------------------

/** What is known about a socket between its birth and TCP_CLOSE. */
const sessionInfo = defineSchema("session", {
  birth_ns: "u64",
  comm: char(16),
  /** The owning process, 0 while unknown. */
  pid: "u32",
});

/** struct sock * -> session. */
const sessions = defineMap({
  name: "sessions",
  type: "hash",
  keySize: 8,
  valueSize: sessionInfo.size,
  maxEntries: MAX_SESSIONS,
});

/** One closed session, as sent to user space. */
const lifeEvent = defineSchema("life_event", {
  ts_ns: "u64",
  span_ns: "u64",
  rx_b: "u64",
  tx_b: "u64",
  comm: char(16),
  ...sock.sockEndpointFields,
  pid: "u32",
});

/** The session's owner is the current process: its PID and comm. */
function rememberOwner(p: Probe, session: Reg): void {
  p.call("get_current_pid_tgid").rsh(r0, 32);
  sessionInfo.store(p, session, "pid", r0);
  sessionInfo.currentComm(p, session, "comm");
}

/** tcp_sock.<field> (a u64 past the end of struct sock) into the record, by a kernel read. */
function copyTcpCounter(
  p: Probe,
  rec: Reg,
  recField: "rx_b" | "tx_b",
  sk: Reg,
  field: string,
): void {
  p.mov(r0, sk).add(r0, p.layouts.structField("tcp_sock", field).offset);
  lifeEvent.readBytes(p, rec, recField, r0, "kernel", 8);
}

function stateProgram(o: Options, ch: EventsDef): Probe {
  // the socket's address is the sessions key, on purpose
  const p = tpBtf("inet_sock_set_state", { name: "tcplife_state", allowPointerLeaks: true });
  const key = p.stack(8), fresh = p.stack(sessionInfo.size);
  const owner = p.label(), close = p.label(), forget = p.label(), done = p.label();
  p.ctx(r7, "sk"); // r7: the socket, all along
  p.field(r1, r7, "sock", "sk_protocol").returnIf(r1, "!=", IPPROTO_TCP);
  if (o.family !== undefined) {
    p.field(r1, r7, "sock", "__sk_common.skc_family").returnIf(r1, "!=", o.family);
  }
  p.store("u64", r10, key, r7);
  p.ctx(r8, "newstate");

  // Birth: the first state before FIN_WAIT1 (a later one does not overwrite it).
  p.if(r8, "<", TCP_FIN_WAIT1, () => {
    p.zeroStack(fresh, sessionInfo.size).ktime(r0);
    p.store("u64", r10, fresh + sessionInfo.offset("birth_ns"), r0);
    p.update(sessions, key, fresh, BPF_NOEXIST);
  });
  p.jumpIf(r8, "==", TCP_CLOSE, close);
  for (const state of [TCP_SYN_SENT, TCP_FIN_WAIT1, TCP_LAST_ACK]) {
    p.jumpIf(r8, "==", state, owner);
  }
  p.goto(done);

  // A state change made by a system call: the caller owns the socket.
  p.bind(owner);
  p.lookup(sessions, key).jumpIf(r0, "==", 0, done).mov(r9, r0);
  rememberOwner(p, r9);
  p.goto(done);

  // TCP_CLOSE: the session ends; report it unless a filter says no.
  p.bind(close);
  p.lookup(sessions, key).jumpIf(r0, "==", 0, done).mov(r9, r0); // r9: the session
  sessionInfo.load(p, r1, r9, "pid");
  p.if(r1, "==", 0, () => rememberOwner(p, r9)); // no owner seen: the current process
  if (o.pid !== undefined) {
    sessionInfo.load(p, r1, r9, "pid");
    p.jumpIf(r1, "!=", o.pid, forget);
  }
  if (o.localPorts) {
    sock.localPortNetworkOrder(p, r1, r7);
    sock.skipUnlessPortIn(p, r1, o.localPorts.map(sock.networkOrder), forget);
  }
  if (o.remotePorts) {
    p.field(r1, r7, "sock", "__sk_common.skc_dport");
    sock.skipUnlessPortIn(p, r1, o.remotePorts.map(sock.networkOrder), forget);
  }
  reserve(p, ch, r8, forget); // r8: the record
  p.ktime(r0);
  lifeEvent.store(p, r8, "ts_ns", r0);
  sessionInfo.load(p, r1, r9, "birth_ns");
  p.sub(r0, r1);
  lifeEvent.store(p, r8, "span_ns", r0);
  sessionInfo.load(p, r1, r9, "pid");
  lifeEvent.store(p, r8, "pid", r1);
  for (const half of [0, 8]) {
    p.load(r1, "u64", r9, sessionInfo.offset("comm") + half);
    p.store("u64", r8, lifeEvent.offset("comm") + half, r1);
  }
  copyTcpCounter(p, r8, "rx_b", r7, "bytes_received");
  copyTcpCounter(p, r8, "tx_b", r7, "bytes_acked");
  sock.storeSockEndpoints(p, lifeEvent, r8, r7);
  submit(p, ch, r8);
  p.bind(forget).delete(sessions, key);
  p.bind(done);
  return p.ret(0);
}

function buildPrograms(o: Options, ch: EventsDef) {
  requireVmlinuxBtf();
  return [stateProgram(o, ch).build()];
}

// --- user side --------------------------------------------------------------

/** One closed session as the user side sees it (tsUs: at close). */
interface Session extends tcp.Connection {
  txBytes: number;
  rxBytes: number;
  /** Lifespan in whole microseconds (as the originals keep it). */
  spanUs: number;
}

function decodeSession(data: Uint8Array): Session {
  const e = lifeEvent.decode(data);
  const spanUs = Number(e.span_ns / 1000n);
  return { ...tcp.decodeConnection(e), txBytes: Number(e.tx_b), rxBytes: Number(e.rx_b), spanUs };
}

/** bcc prints whole KiB (%d of bytes / 1024). */
function kib(bytes: number): number {
  return Math.floor(bytes / 1024);
}

/** bcc's time columns: TIME(s) with 6 decimals, then a space (CSV: a comma). */
function timeStyle(o: Options): tcp.TimeStyle {
  return { digits: 6, gap: " ", csv: o.csv };
}

/** -w: address columns as wide as libbpf-tools' (the longest IPv6 text, 39 characters). */
const WIDE_ADDR = 39;

function header(o: Options): string {
  const time = tcp.timeHeader(o, timeStyle(o));
  if (o.csv) return `${time}PID,COMM,IP,LADDR,LPORT,RADDR,RPORT,TX_KB,RX_KB,MS\n`;
  if (o.wide) {
    return `${time}${"PID".padEnd(5)} ${"COMM".padEnd(16)} IP ${"LADDR".padEnd(WIDE_ADDR)} ` +
      `LPORT ${"RADDR".padEnd(WIDE_ADDR)} RPORT  TX_KB  RX_KB MS\n`;
  }
  return `${time}${"PID".padEnd(5)} ${"COMM".padEnd(10)} ${"LADDR".padEnd(15)} LPORT ` +
    `${"RADDR".padEnd(15)} RPORT TX_KB RX_KB MS\n`;
}

function formatLine(data: Uint8Array, o: Options, clock: tcp.SinceFirst): string {
  const s = decodeSession(data);
  const prefix = tcp.timeCells(o, clock.seconds(s.tsUs), timeStyle(o));
  const ms = (s.spanUs / 1000).toFixed(2);
  const tx = kib(s.txBytes), rx = kib(s.rxBytes);
  if (o.csv) {
    return prefix +
      `${s.pid},${escapeText(s.comm)},${s.ip},${s.laddr},${s.lport},${s.raddr},${s.rport},` +
      `${tx},${rx},${ms}\n`;
  }
  if (o.wide) {
    return prefix + `${String(s.pid).padEnd(5)} ${escapeText(s.comm.slice(0, 16)).padEnd(16)} ` +
      `${String(s.ip).padEnd(2)} ${s.laddr.padEnd(WIDE_ADDR)} ${String(s.lport).padEnd(5)} ` +
      `${s.raddr.padEnd(WIDE_ADDR)} ${String(s.rport).padEnd(5)} ${String(tx).padStart(6)} ` +
      `${String(rx).padStart(6)} ${ms}\n`;
  }
  return prefix + `${String(s.pid).padEnd(5)} ${escapeText(s.comm.slice(0, 10)).padEnd(10)} ` +
    `${s.laddr.padEnd(15)} ${String(s.lport).padEnd(5)} ${s.raddr.padEnd(15)} ` +
    `${String(s.rport).padEnd(5)} ${String(tx).padStart(5)} ${String(rx).padStart(5)} ${ms}\n`;
}

function jsonFields(data: Uint8Array, o: Options, clock: tcp.SinceFirst) {
  const s = decodeSession(data);
  return {
    ...tcp.connectionJson(s, o, clock.seconds(s.tsUs), timeStyle(o)),
    tx_kb: kib(s.txBytes),
    rx_kb: kib(s.rxBytes),
    tx_bytes: s.txBytes,
    rx_bytes: s.rxBytes,
    ms: Number((s.spanUs / 1000).toFixed(2)),
  };
}

export const tool = eventTool({
  name: "tcplife",
  summary: "Trace the lifespan of TCP sessions and summarize.",
  examples: [
    ["tcplife", "trace all TCP connect()s"],
    ["tcplife -T", "include time column (HH:MM:SS)"],
    ["tcplife -w", "wider columns (fit IPv6)"],
    ["tcplife -stT", "csv output, with times & timestamps"],
    ["tcplife -p 181", "only trace PID 181"],
    ["tcplife -L 80", "only trace local port 80"],
    ["tcplife -L 80,81", "only trace local ports 80 and 81"],
    ["tcplife -D 80", "only trace remote port 80"],
    ["tcplife -4", "only trace IPv4 sessions"],
  ],
  flags: {
    ...tcp.timeFlags,
    wide: flag("wide column output (fits IPv6 addresses)", "w"),
    csv: flag("comma separated values output", "s"),
    pid: option("PID", "trace this PID only", pidValue, { short: "p" }),
    localPorts: option("PORTS", "comma-separated list of local ports to trace", portList, {
      short: "L",
      long: "localport",
    }),
    remotePorts: option("PORTS", "comma-separated list of remote ports to trace", portList, {
      short: "D",
      long: "remoteport",
    }),
    ...tcp.familyFlags,
  },
  variants: [["-4"], ["-6"], ["-p", "1"], ["-L", "80,443"], ["-D", "80"]],
  options: (v): Options => ({ ...v, family: tcp.familyOf(v) }),
}, {
  recordSize: lifeEvent.size,
  ringBytes: 1 << 20,
  build: buildPrograms,
  prepare: () => new tcp.SinceFirst(),
  header,
  text: formatLine,
  json: jsonFields,
  textFormat: (o) => o.csv ? "-s" : undefined,
});

if (import.meta.main) await tool.main();
