/**
 * What the TCP event tools (tcplife, tcpaccept) share: the -T/-t time
 * columns (bcc's: time of day, and seconds since the first event shown, by
 * kernel time), -4/-6, and the fields of one connection in JSON.
 *
 * @module
 */
import { decodeSockEndpoints, type SockEndpoints } from "../dsl/sock.ts";
import { AF_INET, AF_INET6 } from "../format/inet.ts";
import { formatTimeOfDay } from "../format/time.ts";
import { flag } from "./flags.ts";
import { UsageError } from "./usage.ts";

/** -T and -t. */
export const timeFlags = {
  time: flag("include time column on output (HH:MM:SS)", "T"),
  timestamp: flag("include timestamp on output (seconds)", "t"),
};

/** -4 and -6. */
export const familyFlags = {
  ipv4: flag("trace IPv4 family only", "4"),
  ipv6: flag("trace IPv6 family only", "6"),
};

/** The address family -4 or -6 asks for (AF_INET, AF_INET6), if any. */
export function familyOf(v: { ipv4: boolean; ipv6: boolean }): number | undefined {
  if (v.ipv4 && v.ipv6) throw new UsageError("-4 and -6 cannot be used together");
  return v.ipv4 ? AF_INET : v.ipv6 ? AF_INET6 : undefined;
}

/** Which time columns to print. */
export interface TimeOptions {
  time: boolean;
  timestamp: boolean;
}

/** How a tool prints its time columns: decimals of TIME(s), what follows it, CSV. */
export interface TimeStyle {
  digits: number;
  /** After the TIME(s) column ("" where bcc prints none: tcpaccept). */
  gap: string;
  csv?: boolean;
}

/** The TIME and TIME(s) headings. */
export function timeHeader(o: TimeOptions, style: TimeStyle): string {
  if (style.csv) return (o.time ? "TIME," : "") + (o.timestamp ? "TIME(s)," : "");
  return (o.time ? "TIME".padEnd(9) : "") + (o.timestamp ? "TIME(s)".padEnd(9) + style.gap : "");
}

/** The time columns of one line: now, and `elapsed` seconds. */
export function timeCells(o: TimeOptions, elapsed: number, style: TimeStyle): string {
  const now = o.time ? formatTimeOfDay(new Date()) : "";
  const seconds = elapsed.toFixed(style.digits);
  if (style.csv) return (o.time ? `${now},` : "") + (o.timestamp ? `${seconds},` : "");
  return (o.time ? now.padEnd(9) : "") + (o.timestamp ? seconds.padEnd(9) + style.gap : "");
}

/** -t's clock: seconds since the first event shown (kernel time), as bcc counts. */
export class SinceFirst {
  #first?: number;

  /** Seconds from the first event to this one, at `us` microseconds of kernel time. */
  seconds(us: number): number {
    this.#first ??= us;
    return (us - this.#first) / 1e6;
  }
}

/** One connection as the user side sees it. */
export interface Connection extends SockEndpoints {
  pid: number;
  comm: string;
  /** Kernel time of the event, microseconds. */
  tsUs: number;
}

/** The connection in a decoded record (sockEndpointFields, pid, comm, ts_ns). */
export function decodeConnection(
  e: Parameters<typeof decodeSockEndpoints>[0] & { pid: number; comm: string; ts_ns: bigint },
): Connection {
  return { pid: e.pid, comm: e.comm, tsUs: Number(e.ts_ns / 1000n), ...decodeSockEndpoints(e) };
}

/** One connection's process and ends, as JSON fields (with -t, "elapsed" first). */
export function connectionJson(
  c: Connection,
  o: TimeOptions,
  elapsed: number,
  style: TimeStyle,
): Record<string, unknown> {
  return {
    ...(o.timestamp ? { elapsed: Number(elapsed.toFixed(style.digits)) } : {}),
    pid: c.pid,
    comm: c.comm,
    ip: c.ip,
    laddr: c.laddr,
    lport: c.lport,
    raddr: c.raddr,
    rport: c.rport,
  };
}
