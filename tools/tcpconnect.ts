#!/usr/bin/env -S deno run -A
/**
 * tcpconnect: active TCP connections (connect()), one line each with the
 * connecting process, or (-c) a count per source, destination and port.
 *
 * Events. libbpf-tools and bcc tcpconnect use a kprobe and a kretprobe on
 * tcp_v4_connect/tcp_v6_connect; this kernel has no kprobes. The same moment
 * is at sock:inet_sock_set_state (tp_btf, the struct sock * comes with it):
 * tcp_v4_connect() sets the socket to SYN_SENT from the connect() system
 * call, with the connecting process current and both addresses and the
 * destination port set (lib/dsl/tcp_connect.ts). The source port is chosen
 * just after, so the line is sent at the first of:
 * - syscalls:sys_exit_connect of the thread that started it (a
 *   non-blocking connect returns EINPROGRESS right after the SYN is sent);
 * - the socket leaving SYN_SENT (ESTABLISHED on the SYN-ACK, CLOSE on a
 *   reset or a time-out), which a blocking connect reaches first.
 * So every connect that sent a SYN shows once, as in the originals (a
 * refused one too), with the source port (-s). Filters (-p, -u, -P, -4/-6)
 * apply when the connect starts. -c counts in user space from the same
 * records (the originals count in a BPF map): lost records are reported.
 *
 * Output as libbpf-tools tcpconnect; -4/-6 as bcc's; --json one object
 * per connect (-c: one per row of the count table, at the end).
 *
 *     # deno run -A tools/tcpconnect.ts
 *     PID    COMM         IP SADDR            DADDR            DPORT
 *     1479   telnet       4  127.0.0.1        127.0.0.1        23
 *     1469   curl         4  10.201.219.236   54.245.105.25    80
 *     1991   telnet       6  ::1              ::1              23
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import { eventTool } from "../lib/cli/drivers/events.ts";
import { flag, integer, option, pidValue } from "../lib/cli/flags.ts";
import { portList } from "../lib/cli/ports.ts";
import * as tcp from "../lib/cli/tcp_tools.ts";
import type { Label } from "../lib/dsl/builder.ts";
import { type EventsDef, reserve, submit } from "../lib/dsl/events.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import { type Probe, tpBtf, tracepoint } from "../lib/dsl/program.ts";
import { r0, r1, r10, r7, r8, r9, type Reg } from "../lib/dsl/registers.ts";
import { char, defineSchema } from "../lib/dsl/schema.ts";
import * as sock from "../lib/dsl/sock.ts";
import {
  connectStart,
  connectStartsMap,
  copyStartComm,
  MAX_CONNECTS,
  rememberConnect,
  TCP,
} from "../lib/dsl/tcp_connect.ts";
import { escapeText } from "../lib/format/escape.ts";
import { formatFixed } from "../lib/format/time.ts";
import { requireVmlinuxBtf } from "../lib/kernel/features.ts";

const IPPROTO_TCP = 6;

/** What the operator asked for. */
interface Options {
  timestamp: boolean;
  count: boolean;
  printUid: boolean;
  sourcePort: boolean;
  pid?: number;
  uid?: number;
  ports?: number[];
  /** Only sockets of this address family (AF_INET / AF_INET6). */
  family?: number;
}

// --- BPF side ---------------------------------------------------------------

/** struct sock * -> who started its connect, until the line is sent. */
const starts = connectStartsMap("starts");

/** Thread ID -> the socket its connect() set to SYN_SENT (for sys_exit_connect). */
const connecting = defineMap({
  name: "connecting",
  type: "hash",
  keySize: 4,
  valueSize: 8,
  maxEntries: MAX_CONNECTS,
});

/** One connect, as sent to user space. */
const connectEvent = defineSchema("connect_event", {
  ts_ns: "u64",
  comm: char(16),
  ...sock.sockEndpointFields,
  pid: "u32",
  uid: "u32",
});

/**
 * The line for the socket `sk` (r7) whose start is at `start` (r9, a map
 * value): reserve, fill, submit; then forget the start (its key at
 * r10+keyOff). Jumps to `done` afterwards.
 */
function sendConnect(p: Probe, ch: EventsDef, sk: Reg, start: Reg, keyOff: number, done: Label) {
  const forget = p.label();
  reserve(p, ch, r8, forget); // r8: the record
  for (const field of ["ts_ns", "pid", "uid"] as const) {
    connectStart.load(p, r1, start, field);
    connectEvent.store(p, r8, field, r1);
  }
  copyStartComm(p, r8, connectEvent.offset("comm"), start);
  sock.storeSockEndpoints(p, connectEvent, r8, sk);
  submit(p, ch, r8);
  p.bind(forget).delete(starts, keyOff);
  p.goto(done);
}

/** inet_sock_set_state: SYN_SENT starts a connect; leaving SYN_SENT sends its line. */
function stateProgram(o: Options, ch: EventsDef): Probe {
  // the socket's address is the starts key, on purpose
  const p = tpBtf("inet_sock_set_state", { name: "tcpconnect_st", allowPointerLeaks: true });
  const key = p.stack(8), tid = p.stack(4), done = p.label();
  p.ctx(r7, "sk"); // r7: the socket, all along
  p.field(r1, r7, "sock", "sk_protocol").returnIf(r1, "!=", IPPROTO_TCP);
  p.store("u64", r10, key, r7);
  p.ctx(r8, "newstate");
  p.if(r8, "==", TCP.SYN_SENT, () => {
    if (o.family !== undefined) {
      p.field(r1, r7, "sock", "__sk_common.skc_family").jumpIf(r1, "!=", o.family, done);
    }
    rememberConnect(p, starts, key, r7, { pid: o.pid, uid: o.uid, remotePorts: o.ports }, done);
    p.call("get_current_pid_tgid").store("u32", r10, tid, r0);
    p.update(connecting, tid, key);
    p.goto(done);
  });
  p.ctx(r8, "oldstate").jumpIf(r8, "!=", TCP.SYN_SENT, done);
  p.lookup(starts, key).jumpIf(r0, "==", 0, done).mov(r9, r0);
  sendConnect(p, ch, r7, r9, key, done);
  p.bind(done);
  return p.ret(0);
}

/** sys_exit_connect: the thread's connect is done; its line, if not sent yet. */
function exitProgram(ch: EventsDef): Probe {
  const p = tracepoint("syscalls", "sys_exit_connect", { name: "tcpconnect_ex" });
  const tid = p.stack(4), key = p.stack(8), done = p.label();
  p.call("get_current_pid_tgid").store("u32", r10, tid, r0);
  p.lookup(connecting, tid).jumpIf(r0, "==", 0, done);
  p.load(r7, "u64", r0, 0).store("u64", r10, key, r7); // r7: the socket
  p.delete(connecting, tid);
  p.lookup(starts, key).jumpIf(r0, "==", 0, done).mov(r9, r0);
  sendConnect(p, ch, r7, r9, key, done);
  p.bind(done);
  return p.ret(0);
}

function buildPrograms(o: Options, ch: EventsDef) {
  requireVmlinuxBtf();
  return [stateProgram(o, ch), exitProgram(ch)].map((p) => p.build());
}

// --- user side --------------------------------------------------------------

/** One connect as the user side sees it. */
interface Connect extends tcp.Connection {
  uid: number;
}

function decodeConnect(data: Uint8Array): Connect {
  const e = connectEvent.decode(data);
  return { ...tcp.decodeConnection(e), uid: e.uid };
}

/** What -t and -c keep while printing. */
class State {
  readonly clock = new tcp.SinceFirst();
  /** -c: connects by source, destination, (source port,) destination port. */
  readonly counts = new Map<string, { ip: number; c: Connect; n: number }>();
}

function header(o: Options): string {
  if (o.count) return "";
  return (o.timestamp ? "TIME(s)".padEnd(9) : "") + (o.printUid ? "UID".padEnd(6) : "") +
    `${"PID".padEnd(6)} ${"COMM".padEnd(12)} IP ${"SADDR".padEnd(16)} ${"DADDR".padEnd(16)}` +
    (o.sourcePort ? " SPORT" : "") + " DPORT\n";
}

function formatLine(data: Uint8Array, o: Options, state: State): string | undefined {
  const c = decodeConnect(data);
  if (o.count) {
    const key = [c.ip, c.laddr, c.raddr, o.sourcePort ? c.lport : 0, c.rport].join(" ");
    const entry = state.counts.get(key) ?? { ip: c.ip, c, n: 0 };
    entry.n++;
    state.counts.set(key, entry);
    return undefined;
  }
  const elapsed = state.clock.seconds(c.tsUs);
  return (o.timestamp ? formatFixed(elapsed, 3).padEnd(9) : "") +
    (o.printUid ? String(c.uid).padEnd(6) : "") +
    `${String(c.pid).padEnd(6)} ${escapeText(c.comm.slice(0, 12)).padEnd(12)} ` +
    `${String(c.ip).padEnd(2)} ${c.laddr.padEnd(16)} ${c.raddr.padEnd(16)}` +
    (o.sourcePort ? ` ${String(c.lport).padEnd(5)}` : "") + ` ${String(c.rport).padEnd(5)}\n`;
}

function jsonFields(data: Uint8Array, o: Options, state: State) {
  const c = decodeConnect(data);
  if (o.count) {
    formatLine(data, o, state);
    return undefined;
  }
  const elapsed = state.clock.seconds(c.tsUs);
  return {
    ...(o.timestamp ? { elapsed: Number(formatFixed(elapsed, 3)) } : {}),
    uid: c.uid,
    pid: c.pid,
    comm: c.comm,
    ip: c.ip,
    saddr: c.laddr,
    sport: c.lport,
    daddr: c.raddr,
    dport: c.rport,
  };
}

/** -c at the end: libbpf-tools' table, IPv4 rows first. */
function countTable(o: Options, state: State) {
  if (!o.count) return undefined;
  const rows = [...state.counts.values()].sort((a, b) => a.ip - b.ip);
  const text = `\n${"LADDR".padEnd(25)} ${"RADDR".padEnd(25)}` +
    (o.sourcePort ? ` ${"LPORT".padEnd(20)}` : "") + ` ${"RPORT".padEnd(20)} ` +
    `${"CONNECTS".padEnd(10)}\n` +
    rows.map(({ c, n }) =>
      `${c.laddr.padEnd(25)} ${c.raddr.padEnd(25)}` +
      (o.sourcePort ? ` ${String(c.lport).padEnd(20)}` : "") +
      ` ${String(c.rport).padEnd(20)} ${String(n).padEnd(10)}\n`
    ).join("");
  const json = rows.map(({ c, n }) => ({
    laddr: c.laddr,
    raddr: c.raddr,
    ...(o.sourcePort ? { lport: c.lport } : {}),
    rport: c.rport,
    connects: n,
  }));
  return { text, json };
}

export const tool = eventTool({
  name: "tcpconnect",
  summary: "Count/trace active TCP connections.",
  examples: [
    ["tcpconnect", "trace all TCP connect()s"],
    ["tcpconnect -t", "include timestamps"],
    ["tcpconnect -p 181", "only trace PID 181"],
    ["tcpconnect -P 80", "only trace port 80"],
    ["tcpconnect -P 80,81", "only trace port 80 and 81"],
    ["tcpconnect -U", "include UID"],
    ["tcpconnect -u 1000", "only trace UID 1000"],
    ["tcpconnect -c", "count connects per src, dest, port"],
    ["tcpconnect -4", "only trace IPv4 connects"],
  ],
  flags: {
    timestamp: flag("include timestamp on output", "t"),
    count: flag("count connects per src ip and dst ip/port", "c"),
    printUid: flag("include UID on output", "U", "print-uid"),
    pid: option("PID", "process PID to trace", pidValue, { short: "p" }),
    uid: option("UID", "process UID to trace", integer(0, 0xfffffffe, "UID"), { short: "u" }),
    sourcePort: flag("consider source port when counting (and print it)", "s", "source-port"),
    ports: option("PORTS", "comma-separated list of destination ports to trace", portList, {
      short: "P",
      long: "port",
    }),
    ...tcp.familyFlags,
  },
  variants: [["-4"], ["-6"], ["-p", "1"], ["-u", "0"], ["-P", "80,443"], ["-c"]],
  options: (v): Options => ({ ...v, family: tcp.familyOf(v) }),
}, {
  recordSize: connectEvent.size,
  ringBytes: 1 << 20,
  build: buildPrograms,
  prepare: () => new State(),
  header,
  text: formatLine,
  json: jsonFields,
  summary: countTable,
});

if (import.meta.main) await tool.main();
