#!/usr/bin/env -S deno run -A
/**
 * tcpretrans: TCP retransmissions, one line each with both ends and the
 * socket's state, or (-c) a count per connection. Cheap: only the
 * retransmit path is traced, not every packet.
 *
 * Events: tcp:tcp_retransmit_skb, as bcc tcpretrans uses it where the
 * kernel has it (it falls back to a kprobe otherwise): the record has both
 * ends, the ports (host order) and the state; -s reads the segment's
 * starting sequence number from the skb's control block (TCP_SKB_CB(skb)->seq,
 * offsets from vmlinux BTF). The tracepoint fires for every retransmission
 * attempt: data segments after an RTO, fast retransmits, tail loss probes
 * that resend the last segment, and SYNs; SYN-ACKs have their own
 * tracepoint (tcp_retransmit_synack) and are not shown, as in bcc. An
 * attempt the device refused (the record's err) is shown too, as bcc's
 * kprobe sees it; --json has err. bcc's -l (tail loss probes marked "L")
 * needs a kprobe on tcp_send_loss_probe: not here; a probe that resends a
 * segment shows as "R".
 *
 * PID is the task current at the retransmission: 0 for the timer and
 * softirq paths that make most of them (as bcc notes).
 *
 * Output as bcc tcpretrans; -c counts in user space from the same records
 * (bcc counts in a BPF map) and prints its table at the end.
 *
 *     # deno run -A tools/tcpretrans.ts
 *     Tracing retransmits ... Hit Ctrl-C to end
 *     TIME     PID     IP LADDR:LPORT          T> RADDR:RPORT          STATE
 *     01:55:05 0       4  10.153.223.157:22    R> 69.53.245.40:34619   ESTABLISHED
 *     01:55:05 0       4  10.153.223.157:22    R> 69.53.245.40:34619   ESTABLISHED
 *     01:55:17 0       4  10.153.223.157:22    R> 69.53.245.40:22957   ESTABLISHED
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import { eventTool } from "../lib/cli/drivers/events.ts";
import { flag } from "../lib/cli/flags.ts";
import * as tcp from "../lib/cli/tcp_tools.ts";
import { type EventsDef, reserve, submit } from "../lib/dsl/events.ts";
import { type Probe, tracepoint } from "../lib/dsl/program.ts";
import { CTX, r0, r1, r2, r3, r8, r9, type Reg } from "../lib/dsl/registers.ts";
import { bytes, defineSchema } from "../lib/dsl/schema.ts";
import { AF_INET6, formatInetAddress } from "../lib/format/inet.ts";
import { tcpStateName } from "../lib/format/tcp_states.ts";
import { formatTimeOfDay } from "../lib/format/time.ts";

/** What the operator asked for. */
interface Options {
  count: boolean;
  sequence: boolean;
  /** Only sockets of this address family (AF_INET / AF_INET6). */
  family?: number;
}

// --- BPF side ---------------------------------------------------------------

/** One retransmission, as sent to user space. */
const retransEvent = defineSchema("retrans_event", {
  ts_ns: "u64",
  saddr: bytes(16),
  daddr: bytes(16),
  pid: "u32",
  state: "u32",
  seq: "u32",
  err: "s32",
  /** MSS-sized segments the skb carries (TCP_SKB_CB(skb)->tcp_gso_segs). */
  segs: "u16",
  family: "u16",
  /** Host order, as the tracepoint has them. */
  sport: "u16",
  dport: "u16",
});

/** Copies an address field of the record (4 or 16 bytes) into the event. */
function copyAddress(p: Probe, rec: Reg, recField: "saddr" | "daddr", field: string, size: number) {
  const f = p.context.kind === "tracepoint" ? p.context.format.field(field) : undefined;
  if (!f || f.size !== size) throw new Error(`tcp_retransmit_skb has no ${size}-byte ${field}`);
  // the v6 fields are not 8-byte aligned in the record: 2-byte loads fit any layout
  const width = f.offset % 4 === 0 ? 4 : 2;
  for (let at = 0; at < size; at += width) {
    p.load(r1, width === 4 ? "u32" : "u16", CTX, f.offset + at);
    p.store(width === 4 ? "u32" : "u16", rec, retransEvent.offset(recField) + at, r1);
  }
}

function retransmitProgram(o: Options, ch: EventsDef): Probe {
  const p = tracepoint("tcp", "tcp_retransmit_skb", { name: "tcpretrans_rt" });
  const done = p.label();
  p.ctx(r9, "family"); // r9: the family
  if (o.family !== undefined) p.returnIf(r9, "!=", o.family);
  reserve(p, ch, r8, done); // r8: the record
  p.ktime(r0);
  retransEvent.store(p, r8, "ts_ns", r0);
  p.call("get_current_pid_tgid").rsh(r0, 32);
  retransEvent.store(p, r8, "pid", r0);
  for (const f of ["state", "err", "sport", "dport"] as const) {
    p.ctx(r1, f);
    retransEvent.store(p, r8, f, r1);
  }
  retransEvent.store(p, r8, "family", r9);
  p.if(r9, "==", AF_INET6, () => {
    copyAddress(p, r8, "saddr", "saddr_v6", 16);
    copyAddress(p, r8, "daddr", "daddr_v6", 16);
  }, () => {
    copyAddress(p, r8, "saddr", "saddr", 4);
    copyAddress(p, r8, "daddr", "daddr", 4);
  });
  // TCP_SKB_CB(skb) is skb->cb: the starting sequence number and the segment count
  const cb = p.layouts.structField("sk_buff", "cb").offset;
  for (const [field, size] of [["seq", 4], ["segs", 2]] as const) {
    const member = field === "seq" ? "seq" : "tcp_gso_segs";
    p.ctx(r3, "skbaddr").add(r3, cb + p.layouts.structField("tcp_skb_cb", member).offset);
    retransEvent.fieldPtr(p, r1, r8, field);
    p.mov(r2, size).call("probe_read_kernel");
  }
  submit(p, ch, r8);
  p.bind(done);
  return p.ret(0);
}

function buildPrograms(o: Options, ch: EventsDef) {
  return [retransmitProgram(o, ch).build()];
}

// --- user side --------------------------------------------------------------

/** One retransmission as the user side sees it. */
interface Retransmit {
  pid: number;
  ip: 4 | 6;
  local: string;
  remote: string;
  laddr: string;
  lport: number;
  raddr: string;
  rport: number;
  state: string;
  seq: number;
  err: number;
  segs: number;
}

function decodeRetransmit(data: Uint8Array): Retransmit {
  const e = retransEvent.decode(data);
  const laddr = formatInetAddress(e.family, e.saddr);
  const raddr = formatInetAddress(e.family, e.daddr);
  return {
    pid: e.pid,
    ip: e.family === AF_INET6 ? 6 : 4,
    local: `${laddr}:${e.sport}`,
    remote: `${raddr}:${e.dport}`,
    laddr,
    lport: e.sport,
    raddr,
    rport: e.dport,
    state: tcpStateName(e.state),
    seq: e.seq,
    err: e.err,
    segs: e.segs,
  };
}

/** -c: retransmits by connection, in the order first seen. */
type Counts = Map<string, { r: Retransmit; n: number }>;

function header(o: Options): string {
  if (o.count) return "Tracing retransmits ... Hit Ctrl-C to end\n";
  return "Tracing retransmits ... Hit Ctrl-C to end\n" +
    `${"TIME".padEnd(8)} ${"PID".padEnd(7)} IP ${"LADDR:LPORT".padEnd(20)} T> ` +
    `${"RADDR:RPORT".padEnd(20)}` + (o.sequence ? ` ${"STATE".padEnd(12)} SEQ\n` : " STATE\n");
}

function formatLine(data: Uint8Array, o: Options, counts: Counts): string | undefined {
  const r = decodeRetransmit(data);
  if (o.count) {
    const key = `${r.local} ${r.remote}`;
    const entry = counts.get(key) ?? { r, n: 0 };
    entry.n++;
    counts.set(key, entry);
    return undefined;
  }
  return `${formatTimeOfDay(new Date()).padEnd(8)} ${String(r.pid).padEnd(7)} ` +
    `${String(r.ip).padEnd(2)} ${r.local.padEnd(20)} R> ${r.remote.padEnd(20)}` +
    (o.sequence ? ` ${r.state.padEnd(12)} ${r.seq}\n` : ` ${r.state}\n`);
}

function jsonFields(data: Uint8Array, o: Options, counts: Counts) {
  if (o.count) return formatLine(data, o, counts);
  const r = decodeRetransmit(data);
  return {
    pid: r.pid,
    ip: r.ip,
    laddr: r.laddr,
    lport: r.lport,
    raddr: r.raddr,
    rport: r.rport,
    type: "R",
    state: r.state,
    ...(o.sequence ? { seq: r.seq } : {}),
    segs: r.segs,
    err: r.err,
  };
}

/** -c at the end: bcc's table, fewest retransmits first. */
function countTable(o: Options, counts: Counts) {
  if (!o.count) return undefined;
  const rows = [...counts.values()].sort((a, b) => a.n - b.n);
  const text = `\n${"LADDR:LPORT".padEnd(25)} ${"RADDR:RPORT".padEnd(25)} RETRANSMITS\n` +
    rows.map(({ r, n }) => `${r.local.padEnd(25)} ${r.remote.padEnd(25)} ${n}\n`).join("");
  const json = rows.map(({ r, n }) => ({
    laddr: r.laddr,
    lport: r.lport,
    raddr: r.raddr,
    rport: r.rport,
    retransmits: n,
  }));
  return { text, json };
}

export const tool = eventTool({
  name: "tcpretrans",
  summary: "Trace TCP retransmits.",
  examples: [
    ["tcpretrans", "trace TCP retransmits"],
    ["tcpretrans -c", "count occurred retransmits per flow"],
    ["tcpretrans -s", "display TCP sequence numbers"],
    ["tcpretrans -4", "trace IPv4 family only"],
    ["tcpretrans -6", "trace IPv6 family only"],
  ],
  flags: {
    count: flag("count occurred retransmits per flow", "c"),
    sequence: flag("display TCP sequence numbers", "s"),
    ...tcp.familyFlags,
  },
  variants: [["-4"], ["-6"], ["-s"]],
  options: (v): Options => ({ count: v.count, sequence: v.sequence, family: tcp.familyOf(v) }),
}, {
  recordSize: retransEvent.size,
  ringBytes: 1 << 20,
  build: buildPrograms,
  prepare: (): Counts => new Map(),
  header,
  text: formatLine,
  json: (data, o, counts) => {
    const fields = jsonFields(data, o, counts);
    return typeof fields === "object" ? fields : undefined;
  },
  summary: countTable,
});

if (import.meta.main) await tool.main();
