#!/usr/bin/env -S deno run -A
/**
 * tcpdrop: TCP packets the kernel dropped, one line each with both ends
 * (from the packet's headers), the socket's state, the TCP flags, why the
 * kernel dropped it, and the kernel stack that dropped it.
 *
 * Events: skb:kfree_skb with its drop reason (Linux 5.17+), as bcc tcpdrop
 * uses it where tcp_drop() cannot be kprobed: every freed packet whose
 * reason is a real one (above NOT_SPECIFIED), IPv4 or IPv6 carrying TCP.
 * The ends and the flags come from the packet's own IP and TCP headers
 * (skb->head + network_header / transport_header, read with
 * bpf_probe_read_kernel; offsets from vmlinux BTF), so a packet that found
 * no socket shows too (REASON NO_SOCKET, STATE "-"): bcc skips those, as
 * it needs skb->sk. The state is that of skb->sk, else the tracepoint's
 * rx_sk (the receiving socket). Reason names are the kernel's own
 * (enum skb_drop_reason from BTF, without SKB_DROP_REASON_). An IPv6
 * packet with extension headers before TCP is not parsed (skipped).
 *
 * Output as bcc tcpdrop, with REASON after the flags; each line is followed
 * by the kernel stack (innermost first) and a blank line; --json one object
 * per drop, with the stack as a list.
 *
 *     # deno run -A tools/tcpdrop.ts
 *     TIME     PID     IP SADDR:SPORT          > DADDR:DPORT          STATE (FLAGS) REASON
 *     05:46:07 0       4  127.0.0.1:41244      > 127.0.0.1:1          - (SYN) NO_SOCKET
 *             kfree_skb_reason+0x8c
 *             tcp_v4_rcv+0x4a9
 *             ...
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import { eventTool } from "../lib/cli/drivers/events.ts";
import { StackTraces } from "../lib/cli/stack_maps.ts";
import * as tcp from "../lib/cli/tcp_tools.ts";
import { Btf } from "../lib/btf/mod.ts";
import { type EventsDef, reserve, submit } from "../lib/dsl/events.ts";
import { type Probe, tracepoint } from "../lib/dsl/program.ts";
import { r0, r1, r10, r2, r3, r7, r8, r9 } from "../lib/dsl/registers.ts";
import { bytes, defineSchema } from "../lib/dsl/schema.ts";
import { defineStackMap, stackId } from "../lib/dsl/stacks.ts";
import { AF_INET, AF_INET6, formatInetAddress, ntohs } from "../lib/format/inet.ts";
import { tcpStateName } from "../lib/format/tcp_states.ts";
import { formatTimeOfDay } from "../lib/format/time.ts";
import type { Session } from "../lib/cli/session.ts";
import { type Kallsyms, kernelSymbols } from "../lib/symbols/kallsyms.ts";

const IPPROTO_TCP = 6;
/** The tracepoint's protocol: skb->protocol in host order (ETH_P_IP, ETH_P_IPV6). */
const ETH_P_IP = 0x0800;
const ETH_P_IPV6 = 0x86dd;
/** skb->transport_header when unset. */
const HEADER_UNSET = 0xffff;
const REASON_PREFIX = "SKB_DROP_REASON_";

/** What the operator asked for. */
interface Options {
  /** Only packets of this address family (AF_INET / AF_INET6). */
  family?: number;
}

// --- BPF side ---------------------------------------------------------------

/** Kernel stacks of the drops. */
const stacks = defineStackMap({ name: "stack_traces", storageSize: 1024 });

/** One dropped packet, as sent to user space. */
const dropEvent = defineSchema("drop_event", {
  saddr: bytes(16),
  daddr: bytes(16),
  pid: "u32",
  reason: "u32",
  stack_id: "s32",
  family: "u16",
  /** Network order, as in the TCP header. */
  sport: "u16",
  dport: "u16",
  flags: "u8",
  state: "u8",
});

/** The reason values and names of this kernel (enum skb_drop_reason). */
function dropReasons(): { name: string; value: number }[] {
  const btf = Btf.vmlinux();
  const id = btf.findId("skb_drop_reason", "ENUM");
  if (id === undefined) throw new Error("this kernel has no drop reasons (enum skb_drop_reason)");
  const t = btf.type(id) as { values?: { name: string; value: number }[] };
  return t.values ?? [];
}

/** bpf_probe_read_kernel(r10 + slot, size, src + off): src is a register or a stack slot's u64. */
function readPacket(p: Probe, slot: number, size: number, base: number, off: number) {
  p.load(r3, "u64", r10, base).add(r3, off).stackPtr(r1, slot).mov(r2, size);
  p.call("probe_read_kernel");
}

function dropProgram(o: Options, ch: EventsDef): Probe {
  const p = tracepoint("skb", "kfree_skb", { name: "tcpdrop_kfree" });
  const notSpecified = dropReasons().find((r) => r.name === `${REASON_PREFIX}NOT_SPECIFIED`);
  const net = p.stack(8), transport = p.stack(8), scratch = p.stack(8), done = p.label();
  p.ctx(r1, "reason").returnIf(r1, "<=", notSpecified?.value ?? 2);
  // r9: the family, from skb->protocol
  p.ctx(r1, "protocol").mov(r9, AF_INET);
  p.if(r1, "!=", ETH_P_IP, () => p.returnIf(r1, "!=", ETH_P_IPV6).mov(r9, AF_INET6));
  if (o.family !== undefined) p.returnIf(r9, "!=", o.family);
  // the headers' addresses: head + network_header, head + transport_header
  p.ctx(r7, "skbaddr"); // r7: the skb
  p.field(r8, r7, "sk_buff", "head"); // r8: its head
  p.field(r1, r7, "sk_buff", "transport_header").returnIf(r1, "==", HEADER_UNSET);
  p.add(r1, r8).store("u64", r10, transport, r1);
  p.field(r1, r7, "sk_buff", "network_header").add(r1, r8).store("u64", r10, net, r1);
  // TCP only: the IPv4 protocol byte, or the IPv6 next header
  p.store("u64", r10, scratch, 0);
  p.if(
    r9,
    "==",
    AF_INET,
    () => readPacket(p, scratch, 1, net, 9),
    () => readPacket(p, scratch, 1, net, 6),
  );
  p.load(r1, "u8", r10, scratch).returnIf(r1, "!=", IPPROTO_TCP);

  reserve(p, ch, r8, done); // r8: the record
  dropEvent.store(p, r8, "family", r9);
  const copy = (field: "saddr" | "daddr", off: number, size: number) => {
    p.load(r3, "u64", r10, net).add(r3, off);
    dropEvent.fieldPtr(p, r1, r8, field);
    p.mov(r2, size).call("probe_read_kernel");
  };
  p.if(r9, "==", AF_INET, () => {
    copy("saddr", 12, 4);
    copy("daddr", 16, 4);
  }, () => {
    copy("saddr", 8, 16);
    copy("daddr", 24, 16);
  });
  // ports and flags from the TCP header
  p.store("u64", r10, scratch, 0);
  readPacket(p, scratch, 4, transport, 0);
  p.load(r1, "u16", r10, scratch);
  dropEvent.store(p, r8, "sport", r1);
  p.load(r1, "u16", r10, scratch + 2);
  dropEvent.store(p, r8, "dport", r1);
  p.store("u64", r10, scratch, 0);
  readPacket(p, scratch, 1, transport, 13);
  p.load(r1, "u8", r10, scratch);
  dropEvent.store(p, r8, "flags", r1);
  // the socket's state: skb->sk, else the receiving socket
  p.field(r9, r7, "sk_buff", "sk");
  p.if(r9, "==", 0, () => p.ctx(r9, "rx_sk"));
  p.mov(r1, 0);
  p.if(r9, "!=", 0, () => p.field(r1, r9, "sock", "__sk_common.skc_state"));
  dropEvent.store(p, r8, "state", r1);
  p.call("get_current_pid_tgid").rsh(r0, 32);
  dropEvent.store(p, r8, "pid", r0);
  p.ctx(r1, "reason");
  dropEvent.store(p, r8, "reason", r1);
  stackId(p, r9, stacks, { user: false });
  dropEvent.store(p, r8, "stack_id", r9);
  submit(p, ch, r8);
  p.bind(done);
  return p.ret(0);
}

function buildPrograms(o: Options, ch: EventsDef) {
  return [dropProgram(o, ch).build()];
}

// --- user side --------------------------------------------------------------

/** What the formatter keeps: reason names, the stack map once attached, symbols. */
class State {
  readonly reasons = new Map(dropReasons().map((r) => [r.value, r.name]));
  stacks?: StackTraces;
  #symbols?: Kallsyms;

  reason(value: number): string {
    const name = this.reasons.get(value);
    return name === undefined ? String(value) : name.replace(REASON_PREFIX, "");
  }

  /** The kernel stack of a drop, innermost first, as bcc's ksym(show_offset=True). */
  stack(id: number): string[] {
    const addrs = this.stacks?.get(id) ?? [];
    this.#symbols ??= kernelSymbols();
    return addrs.map((a) => {
      const s = this.#symbols!.resolve(a);
      return s ? `${s.name}+0x${s.offset.toString(16)}` : `0x${a.toString(16)}`;
    });
  }
}

/** bcc's flags2str. */
function tcpFlags(flags: number): string {
  const names = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];
  return names.filter((_, i) => flags & (1 << i)).join("|");
}

/** One drop as the user side sees it. */
function decodeDrop(data: Uint8Array, state: State) {
  const e = dropEvent.decode(data);
  const saddr = formatInetAddress(e.family, e.saddr);
  const daddr = formatInetAddress(e.family, e.daddr);
  return {
    pid: e.pid,
    ip: e.family === AF_INET6 ? 6 : 4,
    saddr,
    sport: ntohs(e.sport),
    daddr,
    dport: ntohs(e.dport),
    state: e.state === 0 ? "-" : tcpStateName(e.state),
    flags: tcpFlags(e.flags),
    reason: state.reason(e.reason),
    stack: state.stack(e.stack_id),
  };
}

function header(): string {
  return `${"TIME".padEnd(8)} ${"PID".padEnd(7)} IP ${"SADDR:SPORT".padEnd(20)} > ` +
    `${"DADDR:DPORT".padEnd(20)} STATE (FLAGS) REASON\n`;
}

function formatLine(data: Uint8Array, _o: Options, state: State): string {
  const d = decodeDrop(data, state);
  return `${formatTimeOfDay(new Date()).padEnd(8)} ${String(d.pid).padEnd(7)} ` +
    `${String(d.ip).padEnd(2)} ${`${d.saddr}:${d.sport}`.padEnd(20)} > ` +
    `${`${d.daddr}:${d.dport}`.padEnd(20)} ${d.state} (${d.flags}) ${d.reason}\n` +
    d.stack.map((f) => `\t${f}\n`).join("") + "\n";
}

export const tool = eventTool({
  name: "tcpdrop",
  summary: "Trace TCP drops by the kernel.",
  examples: [
    ["tcpdrop", "trace kernel TCP drops"],
    ["tcpdrop -4", "trace IPv4 family only"],
    ["tcpdrop -6", "trace IPv6 family only"],
  ],
  flags: { ...tcp.familyFlags },
  variants: [["-4"], ["-6"]],
  options: (v): Options => ({ family: tcp.familyOf(v) }),
}, {
  recordSize: dropEvent.size,
  ringBytes: 1 << 20,
  build: buildPrograms,
  prepare: () => new State(),
  started: (session: Session, _o, state) => {
    state.stacks = new StackTraces(session.maps.get(stacks)!);
  },
  header,
  text: formatLine,
  json: (data, _o, state) => decodeDrop(data, state),
});

if (import.meta.main) await tool.main();
