#!/usr/bin/env -S deno run -A
/**
 * tcpconnlat: TCP active-open latency, one line per connect: the time from
 * the SYN to the SYN-ACK that established the connection (one round trip
 * plus the peer kernel's handshake work; the peer application plays no
 * part, as the kernel answers the SYN).
 *
 * Events. libbpf-tools and bcc tcpconnlat time a kprobe on
 * tcp_v4_connect/tcp_v6_connect to one on tcp_rcv_state_process; this
 * kernel has no kprobes. Both moments are sock:inet_sock_set_state
 * changes (tp_btf, the struct sock * comes with it): CLOSE -> SYN_SENT,
 * made by connect() in the connecting process (its PID and comm are kept
 * there, lib/dsl/tcp_connect.ts), and SYN_SENT -> ESTABLISHED, made when
 * the SYN-ACK is processed. A connect that ends otherwise (a reset, a
 * time-out, a close) is not shown: it has no connection latency (the
 * originals show the time to a reset too, as they time any packet
 * tcp_rcv_state_process sees in SYN_SENT). `min_ms` and -p apply in BPF.
 *
 * Output as libbpf-tools tcpconnlat (LAT(ms) with two decimals; -L adds
 * LPORT, -t TIME(s)); --json one object per connect, with the latency in
 * microseconds too.
 *
 *     # deno run -A tools/tcpconnlat.ts
 *     PID    COMM         IP SADDR            DADDR            DPORT LAT(ms)
 *     1826   wget         4  10.153.223.157   23.23.100.231    80    26.17
 *     1836   curl         6  ::1              ::1              8080  0.06
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import { eventTool } from "../lib/cli/drivers/events.ts";
import { flag, option, pidValue, positional } from "../lib/cli/flags.ts";
import * as tcp from "../lib/cli/tcp_tools.ts";
import { UsageError } from "../lib/cli/usage.ts";
import { type EventsDef, reserve, submit } from "../lib/dsl/events.ts";
import { type Probe, tpBtf } from "../lib/dsl/program.ts";
import { r0, r1, r10, r7, r8, r9 } from "../lib/dsl/registers.ts";
import { char, defineSchema } from "../lib/dsl/schema.ts";
import * as sock from "../lib/dsl/sock.ts";
import {
  connectStart,
  connectStartsMap,
  copyStartComm,
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
  lport: boolean;
  pid?: number;
  /** Only connects slower than this (microseconds); 0: all. */
  minUs: number;
}

// --- BPF side ---------------------------------------------------------------

/** struct sock * -> who started its connect, and when. */
const starts = connectStartsMap("starts");

/** One established connect, as sent to user space. */
const latencyEvent = defineSchema("connlat_event", {
  ts_ns: "u64",
  delta_ns: "u64",
  comm: char(16),
  ...sock.sockEndpointFields,
  pid: "u32",
});

function stateProgram(o: Options, ch: EventsDef): Probe {
  // the socket's address is the starts key, on purpose
  const p = tpBtf("inet_sock_set_state", { name: "tcpconnlat_st", allowPointerLeaks: true });
  const key = p.stack(8), done = p.label(), forget = p.label();
  p.ctx(r7, "sk"); // r7: the socket, all along
  p.field(r1, r7, "sock", "sk_protocol").returnIf(r1, "!=", IPPROTO_TCP);
  p.store("u64", r10, key, r7);
  p.ctx(r8, "newstate");
  p.if(r8, "==", TCP.SYN_SENT, () => {
    rememberConnect(p, starts, key, r7, { pid: o.pid }, done);
    p.goto(done);
  });
  p.ctx(r1, "oldstate").jumpIf(r1, "!=", TCP.SYN_SENT, done);
  p.lookup(starts, key).jumpIf(r0, "==", 0, done).mov(r9, r0); // r9: the start
  p.jumpIf(r8, "!=", TCP.ESTABLISHED, forget);
  connectStart.load(p, r8, r9, "ts_ns");
  p.ktime(r0).sub(r0, r8).mov(r8, r0); // r8: the latency
  if (o.minUs > 0) p.jumpIf(r8, "<", o.minUs * 1000, forget);
  const latency = p.stack(8);
  p.store("u64", r10, latency, r8);
  reserve(p, ch, r8, forget); // r8: the record
  p.load(r1, "u64", r10, latency);
  latencyEvent.store(p, r8, "delta_ns", r1);
  p.ktime(r0);
  latencyEvent.store(p, r8, "ts_ns", r0);
  connectStart.load(p, r1, r9, "pid");
  latencyEvent.store(p, r8, "pid", r1);
  copyStartComm(p, r8, latencyEvent.offset("comm"), r9);
  sock.storeSockEndpoints(p, latencyEvent, r8, r7);
  submit(p, ch, r8);
  p.bind(forget).delete(starts, key);
  p.bind(done);
  return p.ret(0);
}

function buildPrograms(o: Options, ch: EventsDef) {
  requireVmlinuxBtf();
  return [stateProgram(o, ch).build()];
}

// --- user side --------------------------------------------------------------

/** One connect as the user side sees it. */
interface Latency extends tcp.Connection {
  /** SYN to ESTABLISHED, microseconds (as the originals keep it). */
  us: number;
}

function decodeLatency(data: Uint8Array): Latency {
  const e = latencyEvent.decode(data);
  return { ...tcp.decodeConnection(e), us: Number(e.delta_ns / 1000n) };
}

function header(o: Options): string {
  return (o.timestamp ? "TIME(s)".padEnd(9) + " " : "") +
    `${"PID".padEnd(6)} ${"COMM".padEnd(12)} IP ${"SADDR".padEnd(16)} ` +
    (o.lport ? `${"LPORT".padEnd(6)} ` : "") + `${"DADDR".padEnd(16)} DPORT LAT(ms)\n`;
}

function formatLine(data: Uint8Array, o: Options, clock: tcp.SinceFirst): string {
  const c = decodeLatency(data);
  const elapsed = clock.seconds(c.tsUs);
  return (o.timestamp ? formatFixed(elapsed, 3).padEnd(9) + " " : "") +
    `${String(c.pid).padEnd(6)} ${escapeText(c.comm.slice(0, 12)).padEnd(12)} ` +
    `${String(c.ip).padEnd(2)} ${c.laddr.padEnd(16)} ` +
    (o.lport ? `${String(c.lport).padEnd(6)} ` : "") +
    `${c.raddr.padEnd(16)} ${String(c.rport).padEnd(5)} ${formatFixed(c.us / 1000, 2)}\n`;
}

function jsonFields(data: Uint8Array, o: Options, clock: tcp.SinceFirst) {
  const c = decodeLatency(data);
  const elapsed = clock.seconds(c.tsUs);
  return {
    ...(o.timestamp ? { elapsed: Number(formatFixed(elapsed, 3)) } : {}),
    pid: c.pid,
    comm: c.comm,
    ip: c.ip,
    saddr: c.laddr,
    lport: c.lport,
    daddr: c.raddr,
    dport: c.rport,
    lat_ms: Number(formatFixed(c.us / 1000, 2)),
    lat_us: c.us,
  };
}

/** min_ms as libbpf-tools reads it: a non-negative number of milliseconds (0.1 is 100 us). */
function minMs(text: string, name: string): number {
  const ms = Number(text);
  if (text.trim() === "" || !Number.isFinite(ms)) {
    throw new UsageError(`invalid ${name} '${text}': not a number`);
  }
  if (ms < 0) throw new UsageError(`invalid ${name} '${text}': negative`);
  if (ms > 1e9) throw new UsageError(`invalid ${name} '${text}': too large (at most 1e9)`);
  return ms;
}

export const tool = eventTool({
  name: "tcpconnlat",
  summary: "Trace TCP connects and show connection latency.",
  examples: [
    ["tcpconnlat", "trace all TCP connects"],
    ["tcpconnlat 1", "trace connection latency slower than 1 ms"],
    ["tcpconnlat 0.1", "trace connection latency slower than 100 us"],
    ["tcpconnlat -t", "include timestamps"],
    ["tcpconnlat -p 185", "trace PID 185 only"],
    ["tcpconnlat -L", "include LPORT while printing outputs"],
  ],
  flags: {
    timestamp: flag("include timestamp on output", "t"),
    pid: option("PID", "trace this PID only", pidValue, { short: "p" }),
    lport: flag("include LPORT on output", "L"),
  },
  positionals: {
    minMs: positional("min_ms", "only connects slower than this (ms; 0.1 is 100 us)", minMs),
  },
  variants: [["-p", "1"], ["1"]],
  options: (v): Options => ({
    timestamp: v.timestamp,
    lport: v.lport,
    pid: v.pid,
    minUs: Math.round((v.minMs ?? 0) * 1000),
  }),
}, {
  recordSize: latencyEvent.size,
  ringBytes: 1 << 20,
  build: buildPrograms,
  prepare: () => new tcp.SinceFirst(),
  header,
  text: formatLine,
  json: jsonFields,
});

if (import.meta.main) await tool.main();
