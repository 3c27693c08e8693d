#!/usr/bin/env -S deno run -A
/**
 * tcpstates: every TCP state change, one line each, with the socket's
 * address, both ends, the old and new state, and how long the socket spent
 * in the old state (MS; 0 for the first change seen of a socket).
 *
 * Events: sock:inet_sock_set_state, as libbpf-tools and bcc tcpstates use
 * it: the record has both ends, the ports and both states, so nothing is
 * read from the socket. The previous change's time is kept per socket (its
 * address) until TCP_CLOSE. PID and COMM are those of the task current when
 * the state changed (bcc calls them C-PID and C-COMM): the connecting or
 * closing process for changes made by a system call, whatever the packet
 * interrupted for changes made on receipt (SYN-ACK, FIN, ACK).
 *
 * Output as libbpf-tools tcpstates (-w for the wide IPv6 form); -T adds
 * the time of day (TIME, as bcc), -t seconds since the first line
 * (TIME(s), as bcc); -L/-D filter on local/remote ports, -4/-6 on the
 * family; --json one object per change.
 *
 *     # deno run -A tools/tcpstates.ts
 *     SKADDR           PID     COMM       LADDR           LPORT RADDR           RPORT OLDSTATE    -> NEWSTATE    MS
 *     ffff9fd7e8192000 22384   curl       100.66.100.185  0     52.33.159.26    80    CLOSE       -> SYN_SENT    0.000
 *     ffff9fd7e8192000 0       swapper/5  100.66.100.185  63446 52.33.159.26    80    SYN_SENT    -> ESTABLISHED 1.373
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import { eventTool } from "../lib/cli/drivers/events.ts";
import { flag, option } from "../lib/cli/flags.ts";
import { portList } from "../lib/cli/ports.ts";
import * as tcp from "../lib/cli/tcp_tools.ts";
import type { EventsDef } from "../lib/dsl/events.ts";
import { reserve, submit } from "../lib/dsl/events.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import { type Probe, tracepoint } from "../lib/dsl/program.ts";
import { CTX, r0, r1, r10, r7, r8, r9, type Reg } from "../lib/dsl/registers.ts";
import { bytes, char, defineSchema } from "../lib/dsl/schema.ts";
import { skipUnlessPortIn } from "../lib/dsl/sock.ts";
import { escapeText } from "../lib/format/escape.ts";
import { AF_INET6, formatInetAddress } from "../lib/format/inet.ts";
import { TCP, tcpStateName } from "../lib/format/tcp_states.ts";
import { formatFixed, formatTimeOfDay } from "../lib/format/time.ts";

const IPPROTO_TCP = 6;
/** Sockets followed at once (as libbpf-tools' timestamps map). */
const MAX_SOCKETS = 10240;

/** What the operator asked for. */
interface Options {
  time: boolean;
  timestamp: boolean;
  wide: boolean;
  localPorts?: number[];
  remotePorts?: number[];
  /** Only sockets of this address family (AF_INET / AF_INET6). */
  family?: number;
}

// --- BPF side ---------------------------------------------------------------

/** Socket address -> the time of its last state change. */
const lastChange = defineMap({
  name: "last_change",
  type: "hash",
  keySize: 8,
  valueSize: 8,
  maxEntries: MAX_SOCKETS,
});

/** One state change, as sent to user space. */
const stateEvent = defineSchema("state_event", {
  skaddr: "u64",
  ts_ns: "u64",
  delta_ns: "u64",
  comm: char(16),
  saddr: bytes(16),
  daddr: bytes(16),
  pid: "u32",
  oldstate: "u32",
  newstate: "u32",
  family: "u16",
  /** Host order, as the tracepoint has them. */
  sport: "u16",
  dport: "u16",
});

/** Copies an address field of the tracepoint's record (4 or 16 bytes) into the event. */
function copyAddress(p: Probe, rec: Reg, recField: "saddr" | "daddr", field: string, size: number) {
  const f = p.context.kind === "tracepoint" ? p.context.format.field(field) : undefined;
  if (!f || f.size !== size) throw new Error(`inet_sock_set_state has no ${size}-byte ${field}`);
  const width = f.offset % 8 === 0 && size % 8 === 0 ? 8 : 4;
  for (let at = 0; at < size; at += width) {
    p.load(r1, width === 8 ? "u64" : "u32", CTX, f.offset + at);
    p.store(width === 8 ? "u64" : "u32", rec, stateEvent.offset(recField) + at, r1);
  }
}

function stateProgram(o: Options, ch: EventsDef): Probe {
  const p = tracepoint("sock", "inet_sock_set_state", { name: "tcpstates_st" });
  const key = p.stack(8), now = p.stack(8), done = p.label();
  p.ctx(r1, "protocol").returnIf(r1, "!=", IPPROTO_TCP);
  p.ctx(r9, "family"); // r9: the family
  if (o.family !== undefined) p.returnIf(r9, "!=", o.family);
  if (o.localPorts) {
    p.ctx(r1, "sport");
    skipUnlessPortIn(p, r1, o.localPorts, done);
  }
  if (o.remotePorts) {
    p.ctx(r1, "dport");
    skipUnlessPortIn(p, r1, o.remotePorts, done);
  }
  p.ctx(r1, "skaddr").store("u64", r10, key, r1);
  p.ktime(r0).store("u64", r10, now, r0);
  p.mov(r7, 0); // r7: time in the old state
  p.lookup(lastChange, key).if(r0, "!=", 0, () => {
    p.load(r1, "u64", r0, 0).load(r7, "u64", r10, now).sub(r7, r1);
  });
  const record = p.label();
  reserve(p, ch, r8, record); // r8: the record
  stateEvent.store(p, r8, "delta_ns", r7);
  p.load(r1, "u64", r10, key);
  stateEvent.store(p, r8, "skaddr", r1);
  p.load(r1, "u64", r10, now);
  stateEvent.store(p, r8, "ts_ns", r1);
  p.call("get_current_pid_tgid").rsh(r0, 32);
  stateEvent.store(p, r8, "pid", r0);
  stateEvent.currentComm(p, r8, "comm");
  for (const f of ["oldstate", "newstate"] as const) {
    p.ctx(r1, f);
    stateEvent.store(p, r8, f, r1);
  }
  for (const f of ["sport", "dport"] as const) {
    p.ctx(r1, f);
    stateEvent.store(p, r8, f, r1);
  }
  stateEvent.store(p, r8, "family", r9);
  p.if(r9, "==", AF_INET6, () => {
    copyAddress(p, r8, "saddr", "saddr_v6", 16);
    copyAddress(p, r8, "daddr", "daddr_v6", 16);
  }, () => {
    copyAddress(p, r8, "saddr", "saddr", 4);
    copyAddress(p, r8, "daddr", "daddr", 4);
  });
  submit(p, ch, r8);
  // Remember this change, or forget the socket once it is closed.
  p.bind(record);
  p.ctx(r1, "newstate");
  p.if(r1, "==", TCP.CLOSE, () => p.delete(lastChange, key), () => p.update(lastChange, key, now));
  p.bind(done);
  return p.ret(0);
}

function buildPrograms(o: Options, ch: EventsDef) {
  return [stateProgram(o, ch).build()];
}

// --- user side --------------------------------------------------------------

/** One state change as the user side sees it. */
interface Change {
  skaddr: string;
  pid: number;
  comm: string;
  ip: 4 | 6;
  laddr: string;
  lport: number;
  raddr: string;
  rport: number;
  oldstate: string;
  newstate: string;
  /** Time in the old state, microseconds (as libbpf-tools keeps it). */
  us: number;
  tsUs: number;
}

function decodeChange(data: Uint8Array): Change {
  const e = stateEvent.decode(data);
  return {
    skaddr: e.skaddr.toString(16),
    pid: e.pid,
    comm: e.comm,
    ip: e.family === AF_INET6 ? 6 : 4,
    laddr: formatInetAddress(e.family, e.saddr),
    lport: e.sport,
    raddr: formatInetAddress(e.family, e.daddr),
    rport: e.dport,
    oldstate: tcpStateName(e.oldstate),
    newstate: tcpStateName(e.newstate),
    us: Number(e.delta_ns / 1000n),
    tsUs: Number(e.ts_ns / 1000n),
  };
}

function timeColumns(o: Options, elapsed: number): string {
  return (o.time ? formatTimeOfDay(new Date()).padEnd(8) + " " : "") +
    (o.timestamp ? formatFixed(elapsed, 6).padEnd(9) + " " : "");
}

function header(o: Options): string {
  const time = (o.time ? "TIME".padEnd(8) + " " : "") +
    (o.timestamp ? "TIME(s)".padEnd(9) + " " : "");
  if (o.wide) {
    return time + `${"SKADDR".padEnd(16)} ${"PID".padEnd(7)} ${"COMM".padEnd(16)} IP ` +
      `${"LADDR".padEnd(26)} LPORT ${"RADDR".padEnd(26)} RPORT ${"OLDSTATE".padEnd(11)} -> ` +
      `${"NEWSTATE".padEnd(11)} MS\n`;
  }
  return time + `${"SKADDR".padEnd(16)} ${"PID".padEnd(7)} ${"COMM".padEnd(10)} ` +
    `${"LADDR".padEnd(15)} LPORT ${"RADDR".padEnd(15)} RPORT ${"OLDSTATE".padEnd(11)} -> ` +
    `${"NEWSTATE".padEnd(11)} MS\n`;
}

function formatLine(data: Uint8Array, o: Options, clock: tcp.SinceFirst): string {
  const c = decodeChange(data);
  const ms = formatFixed(c.us / 1000, 3);
  const states = `${c.oldstate.padEnd(11)} -> ${c.newstate.padEnd(11)} ${ms}\n`;
  const prefix = timeColumns(o, clock.seconds(c.tsUs)) +
    `${c.skaddr.padEnd(16)} ${String(c.pid).padEnd(7)} `;
  if (o.wide) {
    return prefix + `${escapeText(c.comm.slice(0, 16)).padEnd(16)} ${String(c.ip).padEnd(2)} ` +
      `${c.laddr.padEnd(26)} ${String(c.lport).padEnd(5)} ${c.raddr.padEnd(26)} ` +
      `${String(c.rport).padEnd(5)} ${states}`;
  }
  return prefix + `${escapeText(c.comm.slice(0, 10)).padEnd(10)} ${c.laddr.padEnd(15)} ` +
    `${String(c.lport).padEnd(5)} ${c.raddr.padEnd(15)} ${String(c.rport).padEnd(5)} ${states}`;
}

function jsonFields(data: Uint8Array, o: Options, clock: tcp.SinceFirst) {
  const c = decodeChange(data);
  const elapsed = clock.seconds(c.tsUs);
  return {
    ...(o.timestamp ? { elapsed: Number(formatFixed(elapsed, 6)) } : {}),
    skaddr: c.skaddr,
    pid: c.pid,
    comm: c.comm,
    ip: c.ip,
    laddr: c.laddr,
    lport: c.lport,
    raddr: c.raddr,
    rport: c.rport,
    oldstate: c.oldstate,
    newstate: c.newstate,
    ms: Number(formatFixed(c.us / 1000, 3)),
  };
}

export const tool = eventTool({
  name: "tcpstates",
  summary: "Trace TCP session state changes and durations.",
  examples: [
    ["tcpstates", "trace all TCP state changes"],
    ["tcpstates -T", "include time column (HH:MM:SS)"],
    ["tcpstates -t", "include timestamp (seconds)"],
    ["tcpstates -w", "wider columns (fit IPv6)"],
    ["tcpstates -L 80", "only trace local port 80"],
    ["tcpstates -L 80,81", "only trace local ports 80 and 81"],
    ["tcpstates -D 80", "only trace remote port 80"],
    ["tcpstates -4", "trace IPv4 family only"],
  ],
  flags: {
    time: flag("include time column on output (HH:MM:SS)", "T"),
    timestamp: flag("include timestamp on output (seconds)", "t"),
    wide: flag("wide column output (fits IPv6 addresses)", "w"),
    localPorts: option("LPORT", "comma-separated list of local ports to trace", portList, {
      short: "L",
      long: "localport",
    }),
    remotePorts: option("DPORT", "comma-separated list of remote ports to trace", portList, {
      short: "D",
      long: "remoteport",
    }),
    ...tcp.familyFlags,
  },
  variants: [["-4"], ["-6"], ["-L", "80,443"], ["-D", "80"]],
  options: (v): Options => ({ ...v, family: tcp.familyOf(v) }),
}, {
  recordSize: stateEvent.size,
  ringBytes: 1 << 20,
  build: buildPrograms,
  prepare: () => new tcp.SinceFirst(),
  header,
  text: formatLine,
  json: jsonFields,
});

if (import.meta.main) await tool.main();
