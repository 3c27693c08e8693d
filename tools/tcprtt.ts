#!/usr/bin/env -S deno run -A
/**
 * tcprtt: TCP round-trip time as a log2 histogram: the socket's smoothed
 * RTT (srtt) each time an established connection processes a received
 * segment, for all sockets, or one histogram per local (-b) or remote (-B)
 * address.
 *
 * Events. libbpf-tools tcprtt reads tcp_sock->srtt_us >> 3 at a fentry or
 * kprobe on tcp_rcv_established; this kernel has neither. tcp:tcp_probe
 * fires at the start of tcp_rcv_established, the same moment, and its
 * record has that very value (srtt, microseconds), the family, both ends
 * (sockaddrs) and the ports, so nothing is read from the socket. -m divides
 * by 1000 first, as the original does. -e keeps the sum of the values for
 * the average ([AVG n], in the histogram's unit, integer division).
 *
 * Output as libbpf-tools tcprtt: -i interval, -d total duration (one report
 * at its end without -i); -T the time of day before each report; -p/-P a
 * local/remote port, -a/-A a local/remote address (IPv4 or IPv6); --json
 * one object per report.
 *
 *     # deno run -A tools/tcprtt.ts -e
 *     Tracing TCP RTT... Hit Ctrl-C to end.
 *     ^C
 *     All Addresses = ****** [AVG 29]
 *          usecs               : count    distribution
 *              0 -> 1          : 0        |                                        |
 *              ...
 *             16 -> 31         : 91       |****************************************|
 *             32 -> 63         : 34       |**************                          |
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import { intervalTool, jsonBuckets, log2Bounds } from "../lib/cli/drivers/interval.ts";
import { flag, integer, option, seconds } from "../lib/cli/flags.ts";
import { drainHistograms } from "../lib/cli/hist_maps.ts";
import type { Session } from "../lib/cli/session.ts";
import { UsageError } from "../lib/cli/usage.ts";
import { defineHistMap } from "../lib/dsl/hist.ts";
import { type Probe, tracepoint } from "../lib/dsl/program.ts";
import { CTX, r1, r10, r7, r8, r9 } from "../lib/dsl/registers.ts";
import { AF_INET, AF_INET6, formatInetAddress } from "../lib/format/inet.ts";
import { formatLog2Hist } from "../lib/format/log2_hist.ts";

/** As libbpf-tools' MAX_SLOTS (27), rounded up so the u64 sum is aligned. */
const MAX_SLOTS = 28;
/** Histogram key: the family (u32) and an address (16 bytes; zero for all). */
const KEY_SIZE = 20;

/** An address filter: the family and the address bytes (network order). */
interface AddressFilter {
  family: number;
  bytes: Uint8Array;
}

/** What the operator asked for. */
interface Options {
  interval?: number;
  count?: number;
  duration?: number;
  timestamp: boolean;
  milliseconds: boolean;
  lport?: number;
  rport?: number;
  laddr?: AddressFilter;
  raddr?: AddressFilter;
  byLaddr: boolean;
  byRaddr: boolean;
  extended: boolean;
}

// --- BPF side ---------------------------------------------------------------

const hists = defineHistMap({ name: "hists", slots: MAX_SLOTS, keySize: KEY_SIZE, sum: true });

/** Offset of a sockaddr's address in the record field `field` (sin_addr / sin6_addr). */
function addressOffset(p: Probe, field: "saddr" | "daddr", family: number): number {
  const f = p.context.kind === "tracepoint" ? p.context.format.field(field) : undefined;
  if (!f) throw new Error(`tcp_probe has no ${field}`);
  return f.offset + (family === AF_INET6 ? 8 : 4);
}

/** Returns unless the record's `field` address is the filter's. */
function filterAddress(p: Probe, field: "saddr" | "daddr", filter: AddressFilter) {
  p.ctx(r1, "family").returnIf(r1, "!=", filter.family);
  const at = addressOffset(p, field, filter.family);
  const view = new DataView(filter.bytes.buffer, filter.bytes.byteOffset);
  // 16-bit pieces: each fits a positive immediate (a 32-bit one would be sign-extended)
  for (let i = 0; i < filter.bytes.length; i += 2) {
    p.load(r1, "u16", CTX, at + i).returnIf(r1, "!=", view.getUint16(i, true));
  }
}

function probeProgram(o: Options): Probe {
  const p = tracepoint("tcp", "tcp_probe", { name: "tcprtt_probe" });
  const key = p.stack(KEY_SIZE), zero = p.stack(hists.valueSize), sum = p.stack(8);
  if (o.lport !== undefined) p.ctx(r1, "sport").returnIf(r1, "!=", o.lport);
  if (o.rport !== undefined) p.ctx(r1, "dport").returnIf(r1, "!=", o.rport);
  if (o.laddr) filterAddress(p, "saddr", o.laddr);
  if (o.raddr) filterAddress(p, "daddr", o.raddr);
  p.ctx(r7, "srtt"); // r7: the RTT, microseconds
  if (o.milliseconds) p.div(r7, 1000);
  p.store("u64", r10, sum, r7);
  p.log2(r8, r7, r9).clamp(r8, MAX_SLOTS - 1); // r8: the slot
  p.zeroStack(key, KEY_SIZE);
  const by = o.byLaddr ? "saddr" : o.byRaddr ? "daddr" : undefined;
  if (by) {
    p.ctx(r9, "family").store("u32", r10, key, r9);
    const copy = (family: number, size: number) => {
      const at = addressOffset(p, by, family);
      for (let i = 0; i < size; i += 4) {
        p.load(r1, "u32", CTX, at + i).store("u32", r10, key + 4 + i, r1);
      }
    };
    p.if(r9, "==", AF_INET6, () => copy(AF_INET6, 16), () => copy(AF_INET, 4));
  }
  p.histAdd(hists, key, r8, { zeroOff: zero, sum });
  return p.ret(0);
}

function buildPrograms(o: Options) {
  return [probeProgram(o).build()];
}

// --- user side --------------------------------------------------------------

/** One histogram of a report. */
interface Hist {
  /** The address it is for (-b/-B), or undefined for all. */
  address?: string;
  slots: number[];
  /** Events counted, and the sum of their values. */
  count: number;
  sum: number;
}

function readReport(session: Session): Hist[] {
  return drainHistograms(session.maps.get(hists)!, hists).map((h) => {
    const v = new DataView(h.key.buffer);
    const family = v.getUint32(0, true);
    const address = family === 0 ? undefined : formatInetAddress(
      family,
      h.key.subarray(4, family === AF_INET6 ? 20 : 8),
    );
    const count = h.slots.reduce((a, b) => a + b, 0);
    return { address, slots: h.slots, count, sum: h.sum ?? 0 };
  });
}

function heading(h: Hist, o: Options): string {
  const label = o.byLaddr
    ? `Local Address = ${h.address} `
    : o.byRaddr
    ? `Remote Address = ${h.address} `
    : "All Addresses = ****** ";
  return label + (o.extended ? `[AVG ${h.count ? Math.floor(h.sum / h.count) : 0}]` : "");
}

function reportText(report: Hist[], o: Options): string {
  const unit = o.milliseconds ? "msecs" : "usecs";
  return report.map((h) => `${heading(h, o)}\n${formatLog2Hist(h.slots, unit)}`).join("");
}

function reportJson(report: Hist[], o: Options) {
  return {
    unit: o.milliseconds ? "msecs" : "usecs",
    histograms: report.map((h) => ({
      ...(o.byLaddr ? { laddr: h.address } : o.byRaddr ? { raddr: h.address } : {}),
      ...(o.extended ? { avg: h.count ? Math.floor(h.sum / h.count) : 0 } : {}),
      buckets: jsonBuckets(h.slots, log2Bounds),
    })),
  };
}

/** An IPv4 or IPv6 address as the kernel stores it. */
function address(text: string, flag: string): AddressFilter {
  if (text.includes(":")) {
    const bytes = ipv6Bytes(text);
    if (!bytes) throw new UsageError(`invalid address '${text}' in ${flag}`);
    return { family: AF_INET6, bytes };
  }
  const parts = text.split(".");
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) {
    throw new UsageError(`invalid address '${text}' in ${flag}`);
  }
  return { family: AF_INET, bytes: Uint8Array.from(parts.map(Number)) };
}

/** inet_pton(AF_INET6): 8 groups, one "::" at most, an IPv4 tail allowed. */
function ipv6Bytes(text: string): Uint8Array | undefined {
  let groups: string[];
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const split = (s: string) => (s === "" ? [] : s.split(":"));
  const expand = (parts: string[]) =>
    parts.flatMap((g) => {
      if (!g.includes(".")) return [g];
      const v4 = g.split(".");
      if (v4.length !== 4 || v4.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) return ["x"];
      const n = v4.map(Number);
      return [((n[0] << 8) | n[1]).toString(16), ((n[2] << 8) | n[3]).toString(16)];
    });
  if (halves.length === 2) {
    const head = expand(split(halves[0])), tail = expand(split(halves[1]));
    const missing = 8 - head.length - tail.length;
    if (missing < 1) return undefined;
    groups = [...head, ...Array(missing).fill("0"), ...tail];
  } else {
    groups = expand(split(text));
  }
  if (groups.length !== 8 || groups.some((g) => !/^[0-9a-fA-F]{1,4}$/.test(g))) return undefined;
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const n = parseInt(g, 16);
    out[2 * i] = n >> 8;
    out[2 * i + 1] = n & 0xff;
  });
  return out;
}

const port = integer(1, 65535, "port");

export const tool = intervalTool({
  name: "tcprtt",
  summary: "Summarize TCP RTT as a histogram.",
  examples: [
    ["tcprtt", "summarize TCP RTT"],
    ["tcprtt -i 1 -d 10", "print 1 second summaries, 10 times"],
    ["tcprtt -m -T", "summarize in millisecond, and timestamps"],
    ["tcprtt -p 80", "filter for local port"],
    ["tcprtt -P 80", "filter for remote port"],
    ["tcprtt -a 10.0.0.1", "filter for local address"],
    ["tcprtt -A 10.0.0.2", "filter for remote address"],
    ["tcprtt -b", "show sockets histogram by local address"],
    ["tcprtt -B", "show sockets histogram by remote address"],
    ["tcprtt -e", "show extension summary(average)"],
  ],
  flags: {
    interval: option("INTERVAL", "summary interval, seconds", seconds, { short: "i" }),
    duration: option("DURATION", "total duration of trace, seconds", seconds, { short: "d" }),
    timestamp: flag("include timestamp on output", "T"),
    milliseconds: flag("millisecond histogram", "m", "millisecond"),
    lport: option("LPORT", "filter for local port", port, { short: "p" }),
    rport: option("RPORT", "filter for remote port", port, { short: "P" }),
    laddr: option("LADDR", "filter for local address", address, { short: "a" }),
    raddr: option("RADDR", "filter for remote address", address, { short: "A" }),
    byLaddr: flag("show sockets histogram by local address", "b", "byladdr"),
    byRaddr: flag("show sockets histogram by remote address", "B", "byraddr"),
    extended: flag("show extension summary(average)", "e", "extension"),
  },
  variants: [["-m", "-e"], ["-p", "80", "-P", "443"], ["-a", "127.0.0.1"], ["-A", "::1"], ["-b"], [
    "-B",
  ]],
  options: (v): Options => {
    if (v.byLaddr && v.byRaddr) throw new UsageError("-b and -B cannot be used together");
    if (v.laddr && v.raddr && v.laddr.family !== v.raddr.family) {
      throw new UsageError("It is not permitted to filter by both IPv4 and IPv6");
    }
    // -d alone: one report at its end; with -i: as many intervals as fit
    const interval = v.interval ?? v.duration;
    const count = v.duration === undefined ? undefined : Math.ceil(v.duration / interval!);
    return { ...v, interval, count };
  },
}, {
  banner: (o) =>
    "Tracing TCP RTT" + (o.duration ? ` for ${o.duration} secs.` : "... Hit Ctrl-C to end."),
  build: buildPrograms,
  read: (session) => readReport(session),
  text: reportText,
  json: reportJson,
});

if (import.meta.main) await tool.main();
