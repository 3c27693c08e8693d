#!/usr/bin/env -S deno run -A
/**
 * tcpsynbl: TCP SYN backlog size as a histogram per backlog limit: how full
 * a listener's accept queue was each time a connection completed its
 * handshake. Values at the limit mean the queue was full: new SYNs are
 * dropped (the application does not accept() fast enough).
 *
 * Events. The original (bpftrace tcpsynbl.bt, libbpf-tools tcpsynbl) reads
 * the listener's sk_ack_backlog and sk_max_ack_backlog on entry to the
 * kprobes tcp_v4_syn_recv_sock / tcp_v6_syn_recv_sock. Here we do not use
 * kprobes, on any kernel:
 * - sock:inet_sock_set_state (tp_btf), LISTEN -> SYN_RECV. tcp_v{4,6}_syn_recv_sock
 *   makes the child socket by cloning the listener (inet_csk_clone_lock), and
 *   the clone fires this event before anything resets the copied fields: the
 *   child still holds the listener's sk_ack_backlog and sk_max_ack_backlog, as
 *   they were at the same point the original reads them (after the accept
 *   queue check). The LISTEN old state tells a clone from a simultaneous open.
 * - skb:kfree_skb (tp_btf) with reason TCP_LISTEN_OVERFLOW, where the kernel
 *   has it (6.15+, with the rx_sk argument of 6.11+): the handshake's last ACK
 *   dropped because the accept queue was full. That is the original's
 *   "dropping a SYN" case, where no child is made; the listener is rx_sk.
 *   Older kernels lack it: overflows then go uncounted.
 * Kernels with kprobes take the same path (DESIGN prefers tracepoints, and it
 * works from 5.5 on); vmlinux BTF is needed for the struct offsets.
 *
 * Flags (libbpf-tools tcpsynbl): -T, -4/-6 (the listener's address family;
 * IPv4 connections to a dual-stack IPv6 listener count as IPv6), interval,
 * count. Output: libbpf-tools' "backlog_max = N" and a log2 table per limit
 * (0 and 1 share its first row, "0 -> 1"; a handshake dropped on a full queue
 * counts at the limit + 1, as there). --bpftrace: tcpsynbl.bt's layout
 * instead, bpftrace's @backlog[limit] hist() rows and its
 * "HH:MM:SS dropping a SYN." lines (polled every 200 ms). --json:
 * one object per interval, {time, backlog: [{limit, buckets: [{low, high,
 * count}]}], dropped}, buckets as the text rows (high inclusive), `dropped`
 * only where overflows are traced.
 *
 *     # deno run -A tools/tcpsynbl.ts
 *     Tracing SYN backlog size. Ctrl-C to end.
 *     ^C
 *     backlog_max = 4
 *          backlog             : count    distribution
 *              0 -> 1          : 2        |****************************************|
 *              2 -> 3          : 2        |****************************************|
 *              4 -> 7          : 1        |********************                    |
 *
 *     # deno run -A tools/tcpsynbl.ts --bpftrace
 *     Tracing SYN backlog size. Ctrl-C to end.
 *     ^C
 *     @backlog[backlog limit]: histogram of backlog size
 *
 *     @backlog[4]:
 *     [0]                    1 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |
 *     [1]                    1 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |
 *     [2, 4)                 2 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|
 *     [4, 8)                 1 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import { Btf } from "../lib/btf/btf.ts";
import {
  type IntervalOptions,
  intervalPositionals,
  intervalTool,
  jsonBuckets,
  timeLine,
  timestampFlag,
} from "../lib/cli/drivers/interval.ts";
import { flag } from "../lib/cli/flags.ts";
import { drainHistograms } from "../lib/cli/hist_maps.ts";
import { writeOut } from "../lib/cli/output.ts";
import type { Session } from "../lib/cli/session.ts";
import { UsageError } from "../lib/cli/usage.ts";
import { defineHistMap } from "../lib/dsl/hist.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import { type Probe, tpBtf } from "../lib/dsl/program.ts";
import { r1, r10, r7, r8, r9, type Reg } from "../lib/dsl/registers.ts";
import { formatBpftraceHistMap } from "../lib/format/bpftrace_hist.ts";
import { AF_INET, AF_INET6 } from "../lib/format/inet.ts";
import { formatLog2Hist } from "../lib/format/log2_hist.ts";
import { formatTimeOfDay } from "../lib/format/time.ts";
import { requireVmlinuxBtf } from "../lib/kernel/features.ts";
import { log2FromHistSlots } from "../lib/export/log2_totals.ts";

/** bpftrace hist() slots for a u32: (..., 0), [0], [1], [2, 4), ..., [2G, 4G). */
const HIST_SLOTS = 34;
/** Socket states (include/net/tcp_states.h). */
const TCP_STATE = { SYN_RECV: 3, LISTEN: 10 } as const;

/** What the operator asked for. */
interface Options extends IntervalOptions {
  /** Only listeners of this address family (AF_INET / AF_INET6). */
  family?: number;
  /** --bpftrace: tcpsynbl.bt's layout instead of libbpf-tools'. */
  bpftrace: boolean;
}

// --- BPF side ---------------------------------------------------------------

/** @backlog[limit] = hist(backlog): u32 limit -> bpftrace hist() counters. */
const backlog = defineHistMap({ name: "backlog", slots: HIST_SLOTS, keySize: 4, maxEntries: 1024 });
/** Handshakes dropped on a full accept queue, a running total (slot 0). */
const drops = defineMap({ name: "drops", type: "array", keySize: 4, valueSize: 8, maxEntries: 1 });

/** Returns unless the socket in `sk` is of the family -4/-6 asked for. */
function familyFilter(p: Probe, sk: Reg, o: Options): void {
  if (o.family === undefined) return;
  p.field(r1, sk, "sock", "__sk_common.skc_family").returnIf(r1, "!=", o.family);
}

/** @backlog[sk->sk_max_ack_backlog] = hist(sk->sk_ack_backlog), for the listener in `sk`. */
function countBacklog(p: Probe, sk: Reg): void {
  const key = p.stack(4), zero = p.stack(backlog.valueSize);
  p.field(r1, sk, "sock", "sk_max_ack_backlog").store("u32", r10, key, r1);
  p.field(r9, sk, "sock", "sk_ack_backlog");
  // hist() slot: 1 for 0, else floor(log2(v)) + 2 (slot 0 is for negatives)
  p.if(r9, "==", 0, () => p.mov(r9, 1), () => p.log2(r8, r9, r1).add(r8, 2).mov(r9, r8));
  p.clamp(r9, HIST_SLOTS - 1);
  p.histAdd(backlog, key, r9, { zeroOff: zero });
}

/** A child cloned from a listener: the clone still holds the listener's backlog fields. */
function childProgram(o: Options): Probe {
  const p = tpBtf("inet_sock_set_state", { name: "tcpsynbl_child" });
  p.ctx(r1, "newstate").returnIf(r1, "!=", TCP_STATE.SYN_RECV);
  p.ctx(r1, "oldstate").returnIf(r1, "!=", TCP_STATE.LISTEN);
  p.ctx(r7, "sk");
  familyFilter(p, r7, o);
  countBacklog(p, r7);
  return p.ret(0);
}

/** A handshake's last ACK dropped because the listener's accept queue was full. */
function overflowProgram(o: Options, reason: number): Probe {
  const p = tpBtf("kfree_skb", { name: "tcpsynbl_drop" });
  p.ctx(r1, "reason").returnIf(r1, "!=", reason);
  p.ctx(r7, "rx_sk").returnIf(r7, "==", 0);
  p.field(r1, r7, "sock", "__sk_common.skc_state").returnIf(r1, "!=", TCP_STATE.LISTEN);
  familyFilter(p, r7, o);
  countBacklog(p, r7);
  const key = p.stack(4);
  p.store("u32", r10, key, 0).counterAdd(drops, key, 1);
  return p.ret(0);
}

/** The drop reason for a full accept queue, when kfree_skb reports it with the listener. */
function listenOverflowReason(): number | undefined {
  try {
    const params = Btf.vmlinux().funcProtoParams("btf_trace_kfree_skb");
    if (params.length < 5) return undefined; // no rx_sk before 6.11
    const value = Btf.vmlinux().enumValue("skb_drop_reason", "SKB_DROP_REASON_TCP_LISTEN_OVERFLOW");
    return typeof value === "number" ? value : undefined;
  } catch {
    return undefined; // older kernels: no such reason
  }
}

function buildPrograms(o: Options) {
  requireVmlinuxBtf();
  const reason = listenOverflowReason();
  const programs = [childProgram(o)];
  if (reason !== undefined) programs.push(overflowProgram(o, reason));
  return programs.map((p) => p.build());
}

// --- user side --------------------------------------------------------------

/** One backlog limit's histogram: counts by bpftrace hist() slot. */
interface Histogram {
  limit: number;
  keyBytes: Uint8Array;
  slots: number[];
}

/** One interval: the histograms, and the drops (undefined where they are not traced). */
interface Report {
  hists: Histogram[];
  dropped?: number;
}

function readHistograms(session: Session): Histogram[] {
  return drainHistograms(session.maps.get(backlog)!, backlog).map((h) => ({
    limit: new DataView(h.key.buffer).getUint32(0, true),
    keyBytes: h.key,
    slots: h.slots,
  }));
}

/** The running total of overflow drops, or undefined without the drop program. */
function readDrops(session: Session): number | undefined {
  const map = session.maps.get(drops);
  const value = map?.lookup(new Uint8Array(4));
  return value ? Number(new DataView(value.buffer).getBigUint64(0, true)) : undefined;
}

function formatText(r: Report, o: Options): string {
  if (!o.bpftrace) {
    // libbpf-tools: per limit, "backlog_max = N" and print_log2_hist
    return "\n" + (o.timestamp ? timeLine() : "") +
      r.hists.map((h) =>
        `backlog_max = ${h.limit}\n` + formatLog2Hist(log2FromHistSlots(h.slots), "backlog")
      ).join("");
  }
  // tcpsynbl.bt's END block, then bpftrace's map printing at exit
  const end = o.interval === undefined
    ? "\n@backlog[backlog limit]: histogram of backlog size\n\n"
    : "";
  const hists = r.hists.length === 0 ? "" : formatBpftraceHistMap(
    "@backlog",
    r.hists.map((h) => ({ key: String(h.limit), keyBytes: h.keyBytes, counts: h.slots })),
    { kind: "hist" },
  );
  return end + "\n" + (o.timestamp ? timeLine() : "") + hists;
}

/** Inclusive value range of hist() slot i (slot 0, negatives, never occurs for a u32). */
function slotRange(i: number): { low: number; high: number } {
  if (i <= 2) return { low: i - 1, high: i - 1 };
  return { low: 2 ** (i - 2), high: 2 ** (i - 1) - 1 };
}

function formatJson(r: Report) {
  return {
    backlog: r.hists.map((h) => ({ limit: h.limit, buckets: jsonBuckets(h.slots, slotRange, 1) })),
    ...(r.dropped === undefined ? {} : { dropped: r.dropped }),
  };
}

/** How often the drop counter is polled for "dropping a SYN." lines. */
const DROP_POLL_MS = 200;

/**
 * Follows the overflow drop counter: prints "HH:MM:SS dropping a SYN." for
 * each new drop, as tcpsynbl.bt does (polled, so the time is within
 * DROP_POLL_MS), and tells each interval how many drops it had.
 */
class DropWatcher implements Disposable {
  #seen: number;
  #reported: number;
  readonly #timer?: ReturnType<typeof setInterval>;

  constructor(readonly session: Session, readonly printLines: boolean) {
    this.#seen = this.#reported = readDrops(session) ?? 0;
    if (this.available) this.#timer = setInterval(() => this.poll(), DROP_POLL_MS);
  }

  /** Whether this kernel reports overflow drops (see the header comment). */
  get available(): boolean {
    return this.session.maps.has(drops);
  }

  poll(): void {
    const total = readDrops(this.session) ?? 0;
    if (this.printLines) {
      for (; this.#seen < total; this.#seen++) {
        writeOut(`${formatTimeOfDay(new Date())} dropping a SYN.\n`);
      }
    }
    this.#seen = total;
  }

  /** Drops since the previous call, or undefined when drops are not traced. */
  takeInterval(): number | undefined {
    if (!this.available) return undefined;
    this.poll();
    const n = this.#seen - this.#reported;
    this.#reported = this.#seen;
    return n;
  }

  [Symbol.dispose](): void {
    clearInterval(this.#timer);
  }
}

export const tool = intervalTool({
  name: "tcpsynbl",
  summary: "Show TCP SYN backlog size as a histogram, per backlog limit.",
  examples: [
    ["tcpsynbl", "trace SYN backlog size until Ctrl-C"],
    ["tcpsynbl -T 1 10", "1s summaries with timestamps, 10 times"],
    ["tcpsynbl -4", "IPv4 listeners only"],
    ["tcpsynbl -6", "IPv6 listeners only"],
    ["tcpsynbl --bpftrace", "tcpsynbl.bt's output (bpftrace hist(), drops)"],
  ],
  flags: {
    timestamp: timestampFlag,
    ipv4: flag("trace IPv4 listeners only", "4"),
    ipv6: flag("trace IPv6 listeners only", "6"),
    bpftrace: flag("tcpsynbl.bt's layout: @backlog[limit] hist(), drop lines"),
  },
  positionals: intervalPositionals,
  variants: [["-4"], ["-6"]],
  options: (v): Options => {
    if (v.ipv4 && v.ipv6) throw new UsageError("-4 and -6 cannot be used together");
    return { ...v, family: v.ipv4 ? AF_INET : v.ipv6 ? AF_INET6 : undefined };
  },
}, {
  banner: () => "Tracing SYN backlog size. Ctrl-C to end.",
  build: buildPrograms,
  prepare: (): { drops?: DropWatcher } => ({}),
  started: (session, o, json, ctx) => (ctx.drops = new DropWatcher(session, !json && o.bpftrace)),
  read: (session, _o, ctx) => ({
    dropped: ctx.drops!.takeInterval(),
    hists: readHistograms(session),
  }),
  text: formatText,
  json: formatJson,
  // --prometheus: bpftk_tcpsynbl_backlog{limit} (the drops are per interval: not exported)
  metrics: (r) => ({
    histograms: {
      unit: "backlog",
      histograms: r.hists.map((h) => ({
        labels: { limit: h.limit },
        slots: log2FromHistSlots(h.slots),
      })),
    },
  }),
  ownHeading: true,
});

if (import.meta.main) await tool.main();
