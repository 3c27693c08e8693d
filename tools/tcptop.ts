#!/usr/bin/env -S deno run -A
/**
 * tcptop: TCP throughput by connection and process, top-style: every
 * interval, the KiB each process received and sent on each connection,
 * busiest first, IPv4 then IPv6.
 *
 * Events. libbpf-tools tcptop uses kprobes on tcp_sendmsg (the size asked
 * for) and tcp_cleanup_rbuf (the bytes copied to the reader); this kernel
 * has no kprobes. sock:sock_send_length and sock:sock_recv_length (tp_btf:
 * the struct sock * comes with them) fire as sock_sendmsg()/sock_recvmsg()
 * return, in the calling process, with the bytes actually sent or received.
 * What that means for the columns:
 * - TX_KB: bytes the send calls accepted (send, write, sendmsg, sendfile
 *   and splice into a socket, io_uring sends): exact for what was queued;
 *   the originals count the size asked for, which differs only for a
 *   partial (non-blocking) send.
 * - RX_KB: bytes the receive calls returned (recv, read, recvmsg, io_uring
 *   receives; MSG_PEEK not counted, as nothing is consumed): exact for
 *   those; approximate where data leaves a socket another way, which is not
 *   seen: splice from a socket (tcp_splice_read) and TCP_ZEROCOPY_RECEIVE.
 * Rows are keyed by PID, COMM and both ends (local port skc_num, as the
 * originals). -p PID, -4/-6 apply in BPF; -s sorts, -r limits the rows.
 *
 * Output as libbpf-tools tcptop: the time and /proc/loadavg (not with -S),
 * then the table (the screen is cleared first on a terminal, unless -C);
 * --json one object per interval with the exact bytes.
 *
 *     # deno run -A tools/tcptop.ts -C
 *     19:46:24 loadavg: 1.86 2.67 2.91 3/362 16681
 *
 *     PID     COMM         LADDR                 RADDR                  RX_KB  TX_KB
 *     16201   sshd         10.191.111.39:22      10.127.93.120:51122        0    239
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import { intervalPositionals, intervalTool } from "../lib/cli/drivers/interval.ts";
import { flag, integer, option, optionWithDefault, pidValue } from "../lib/cli/flags.ts";
import type { Session } from "../lib/cli/session.ts";
import * as tcp from "../lib/cli/tcp_tools.ts";
import { UsageError } from "../lib/cli/usage.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import { type Probe, tpBtf } from "../lib/dsl/program.ts";
import { r0, r1, r10, r2, r7, r8, r9 } from "../lib/dsl/registers.ts";
import { bytes, char, defineSchema } from "../lib/dsl/schema.ts";
import { escapeText } from "../lib/format/escape.ts";
import { AF_INET, AF_INET6, formatInetAddress, ntohs } from "../lib/format/inet.ts";
import { formatTimeOfDay } from "../lib/format/time.ts";
import { requireVmlinuxBtf } from "../lib/kernel/features.ts";

const IPPROTO_TCP = 6;
const MSG_PEEK = 2;
/** Connections followed per interval (as libbpf-tools' ip_map). */
const MAX_ENTRIES = 10240;

/** What the operator asked for. */
interface Options {
  interval?: number;
  count?: number;
  noClear: boolean;
  noSummary: boolean;
  pid?: number;
  rows: number;
  sort: "all" | "sent" | "received";
  family?: number;
}

// --- BPF side ---------------------------------------------------------------

/** One connection of one process. */
const topKey = defineSchema("top_key", {
  saddr: bytes(16),
  daddr: bytes(16),
  comm: char(16),
  pid: "u32",
  family: "u16",
  /** Host order (skc_num). */
  lport: "u16",
  /** Network order (skc_dport). */
  dport: "u16",
  pad: "u16",
});

const traffic = defineSchema("traffic", { sent: "u64", received: "u64" });

const connections = defineMap({
  name: "connections",
  type: "hash",
  keySize: topKey.size,
  valueSize: traffic.size,
  maxEntries: MAX_ENTRIES,
});

function lengthProgram(o: Options, direction: "send" | "recv"): Probe {
  const p = tpBtf(`sock_${direction}_length`, { name: `tcptop_${direction}` });
  const key = p.stack(topKey.size), zero = p.stack(traffic.size), done = p.label();
  p.ctx(r8, "ret").returnIf(r8, "s<=", 0); // r8: the bytes
  if (direction === "recv") p.ctx(r1, "flags").and(r1, MSG_PEEK).returnIf(r1, "!=", 0);
  p.ctx(r7, "sk"); // r7: the socket
  p.field(r1, r7, "sock", "sk_protocol").returnIf(r1, "!=", IPPROTO_TCP);
  p.field(r9, r7, "sock", "__sk_common.skc_family"); // r9: the family
  if (o.family !== undefined) p.returnIf(r9, "!=", o.family);
  else p.if(r9, "!=", AF_INET, () => p.returnIf(r9, "!=", AF_INET6));
  p.call("get_current_pid_tgid").rsh(r0, 32);
  if (o.pid !== undefined) p.returnIf(r0, "!=", o.pid);
  p.zeroStack(key, topKey.size);
  p.store("u32", r10, key + topKey.offset("pid"), r0);
  p.store("u16", r10, key + topKey.offset("family"), r9);
  p.field(r1, r7, "sock", "__sk_common.skc_num");
  p.store("u16", r10, key + topKey.offset("lport"), r1);
  p.field(r1, r7, "sock", "__sk_common.skc_dport");
  p.store("u16", r10, key + topKey.offset("dport"), r1);
  const copy = (field: "saddr" | "daddr", path: string, size: number) => {
    const off = p.layouts.structField("sock", path).offset;
    for (let at = 0; at < size; at += 4) {
      p.load(r1, "u32", r7, off + at).store("u32", r10, key + topKey.offset(field) + at, r1);
    }
  };
  p.if(r9, "==", AF_INET6, () => {
    copy("saddr", "__sk_common.skc_v6_rcv_saddr", 16);
    copy("daddr", "__sk_common.skc_v6_daddr", 16);
  }, () => {
    copy("saddr", "__sk_common.skc_rcv_saddr", 4);
    copy("daddr", "__sk_common.skc_daddr", 4);
  });
  p.stackPtr(r1, key + topKey.offset("comm")).mov(r2, 16).call("get_current_comm");
  p.lookupOrInit(connections, key, zero).jumpIf(r0, "==", 0, done);
  p.atomicAdd("u64", r0, traffic.offset(direction === "send" ? "sent" : "received"), r8);
  p.bind(done);
  return p.ret(0);
}

function buildPrograms(o: Options) {
  requireVmlinuxBtf();
  return [lengthProgram(o, "send"), lengthProgram(o, "recv")].map((p) => p.build());
}

// --- user side --------------------------------------------------------------

/** One row: a process's connection and its bytes this interval. */
interface Row {
  pid: number;
  comm: string;
  family: number;
  laddr: string;
  lport: number;
  raddr: string;
  rport: number;
  sent: number;
  received: number;
}

/** Reads and clears the map, sorted as libbpf-tools sorts (IPv4 first, busiest first). */
function readRows(session: Session, o: Options): Row[] {
  const map = session.maps.get(connections)!;
  const rows: Row[] = [];
  for (const [k, v] of map.entries()) {
    const key = topKey.decode(k), value = traffic.decode(v);
    const size = key.family === AF_INET6 ? 16 : 4;
    rows.push({
      pid: key.pid,
      comm: key.comm,
      family: key.family,
      laddr: formatInetAddress(key.family, key.saddr.subarray(0, size)),
      lport: key.lport,
      raddr: formatInetAddress(key.family, key.daddr.subarray(0, size)),
      rport: ntohs(key.dport),
      sent: Number(value.sent),
      received: Number(value.received),
    });
    map.delete(k);
  }
  const by = (r: Row) =>
    o.sort === "sent" ? r.sent : o.sort === "received" ? r.received : r.sent + r.received;
  return rows.sort((a, b) => a.family - b.family || by(b) - by(a)).slice(0, o.rows);
}

/** The PID column's width: the digits of pid_max, at least 6 (as libbpf-tools). */
function pidWidth(): number {
  try {
    return Math.max(6, Deno.readTextFileSync("/proc/sys/kernel/pid_max").trim().length);
  } catch {
    return 7;
  }
}

function reportText(rows: Row[], o: Options): string {
  const w = pidWidth();
  let out = "";
  if (!o.noClear && Deno.stdout.isTerminal()) out += "\x1b[H\x1b[2J";
  if (!o.noSummary) {
    let loadavg = "";
    try {
      loadavg = Deno.readTextFileSync("/proc/loadavg");
    } catch { /* as libbpf-tools: no line without /proc/loadavg */ }
    if (loadavg) out += `${formatTimeOfDay(new Date()).padStart(8)} loadavg: ${loadavg}\n`;
  }
  const head = (width: number, l: string, r: string) =>
    `${"PID".padEnd(w)} ${"COMM".padEnd(12)} ${l.padEnd(width)} ${r.padEnd(width)} ` +
    ` RX_KB  TX_KB\n`;
  out += head(21, "LADDR", "RADDR");
  let v6Header = false;
  for (const r of rows) {
    const width = r.family === AF_INET6 ? 51 : 21;
    if (r.family === AF_INET6 && !v6Header) {
      out += "\n" + head(51, "LADDR6", "RADDR6");
      v6Header = true;
    }
    out += `${String(r.pid).padEnd(w)} ${escapeText(r.comm.slice(0, 12)).padEnd(12)} ` +
      `${`${r.laddr}:${r.lport}`.padEnd(width)} ${`${r.raddr}:${r.rport}`.padEnd(width)} ` +
      `${String(Math.floor(r.received / 1024)).padStart(6)} ` +
      `${String(Math.floor(r.sent / 1024)).padStart(6)}\n`;
  }
  return out + "\n";
}

function reportJson(rows: Row[]) {
  return {
    connections: rows.map((r) => ({
      pid: r.pid,
      comm: r.comm,
      ip: r.family === AF_INET6 ? 6 : 4,
      laddr: r.laddr,
      lport: r.lport,
      raddr: r.raddr,
      rport: r.rport,
      rx_kb: Math.floor(r.received / 1024),
      tx_kb: Math.floor(r.sent / 1024),
      rx_bytes: r.received,
      tx_bytes: r.sent,
    })),
  };
}

function sortValue(text: string, name: string): Options["sort"] {
  if (text === "all" || text === "sent" || text === "received") return text;
  throw new UsageError(`invalid ${name} '${text}': one of all, sent, received`);
}

export const tool = intervalTool({
  name: "tcptop",
  summary: "Trace sending and received operation over IP.",
  examples: [
    ["tcptop", "TCP top, refresh every 1s"],
    ["tcptop -p 1216", "only trace PID 1216"],
    ["tcptop -C 5 10", "5s summaries, 10 times, without clearing"],
    ["tcptop -s sent -r 5", "the 5 busiest senders"],
  ],
  flags: {
    ...tcp.familyFlags,
    noClear: flag("don't clear the screen", "C", "noclear"),
    pid: option("PID", "process ID to trace", pidValue, { short: "p" }),
    rows: optionWithDefault(
      "ROWS",
      "maximum rows to print, default 20",
      integer(1, 1e9, "ROWS"),
      20,
      {
        short: "r",
      },
    ),
    sort: optionWithDefault(
      "SORT",
      "sort columns, default all [all, sent, received]",
      sortValue,
      "all" as Options["sort"],
      { short: "s" },
    ),
    noSummary: flag("skip system summary line", "S", "nosummary"),
  },
  positionals: intervalPositionals,
  variants: [["-4"], ["-6"], ["-p", "1"]],
  options: (v): Options => ({
    interval: v.interval,
    count: v.count,
    noClear: v.noClear,
    noSummary: v.noSummary,
    pid: v.pid,
    rows: v.rows,
    sort: v.sort,
    family: tcp.familyOf(v),
  }),
}, {
  build: buildPrograms,
  read: (session, o) => readRows(session, o),
  text: reportText,
  json: (rows) => reportJson(rows),
  defaultInterval: 1,
  ownHeading: true,
});

if (import.meta.main) await tool.main();
