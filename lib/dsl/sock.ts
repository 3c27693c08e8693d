/**
 * A TCP/UDP socket's two ends (address family, local and remote address and
 * port) copied from a `struct sock` into an event record, and read back in
 * user space. The fields come from `sk->__sk_common` (offsets from vmlinux
 * BTF): skc_rcv_saddr/skc_daddr are the IPv4 addresses,
 * skc_v6_rcv_saddr/skc_v6_daddr the IPv6 ones, skc_dport the remote port.
 * The local port is inet_sock's inet_sport, which the sock:inet_sock_set_state
 * tracepoint also reports: skc_num would do while the socket is hashed, but
 * TCP_CLOSE is traced after inet_put_port() has cleared it. Both ports stay
 * in network order in the record and are swapped in user space.
 *
 * @example
 * ```ts
 * const acceptEvent = defineSchema("accept_event", { pid: "u32", ...sockEndpointFields });
 * // BPF (sk in r8, a reserved record in r9):
 * storeSockEndpoints(p, acceptEvent, r9, r8);
 * // user: decodeSockEndpoints(acceptEvent.decode(data)) -> { family: 4, laddr: "127.0.0.1", ... }
 * ```
 *
 * @module
 */
import { AF_INET6, formatInetAddress, ntohs } from "../format/inet.ts";
import type { Label } from "./builder.ts";
import type { Probe } from "./program.ts";
import { r1, r10, r2, r3, type Reg } from "./registers.ts";
import { bytes, type Schema } from "./schema.ts";

/** Record fields for the two ends; spread them into a schema. */
export const sockEndpointFields = {
  /** Local address: 4 bytes for AF_INET, 16 for AF_INET6. */
  saddr: bytes(16),
  /** Remote address. */
  daddr: bytes(16),
  /** AF_INET or AF_INET6. */
  family: "u16",
  /** Local port, network order (inet_sport). */
  lport: "u16",
  /** Remote port, network order (as the kernel keeps it). */
  dport: "u16",
} as const;

/** A schema that has the endpoint fields (and any others). */
export type SockEndpointSchema = Schema<typeof sockEndpointFields>;

/**
 * Fills the endpoint fields of the record at `rec` from the socket at `sk`.
 * Typed (tp_btf) programs read struct sock directly, others with
 * bpf_probe_read_kernel. `rec` and `sk` must be r6-r9; clobbers r0-r5.
 */
export function storeSockEndpoints(p: Probe, schema: SockEndpointSchema, rec: Reg, sk: Reg): void {
  const common = (field: string) => `__sk_common.${field}`;
  localPortNetworkOrder(p, r1, sk);
  schema.store(p, rec, "lport", r1);
  p.field(r1, sk, "sock", common("skc_dport"));
  schema.store(p, rec, "dport", r1);
  p.field(r1, sk, "sock", common("skc_family"));
  schema.store(p, rec, "family", r1);
  p.if(r1, "==", AF_INET6, () => {
    copy16(p, rec, schema.offset("saddr"), sk, sockOffset(p, common("skc_v6_rcv_saddr")));
    copy16(p, rec, schema.offset("daddr"), sk, sockOffset(p, common("skc_v6_daddr")));
  }, () => {
    p.field(r1, sk, "sock", common("skc_rcv_saddr"));
    p.store("u32", rec, schema.offset("saddr"), r1);
    p.field(r1, sk, "sock", common("skc_daddr"));
    p.store("u32", rec, schema.offset("daddr"), r1);
  });
}

/**
 * dst = inet_sk(sk)->inet_sport, the local port in network order (valid
 * from connect/accept until the socket is freed). It lies past struct sock,
 * where a typed load may not go, so it is always a kernel read. `sk` must
 * not be r1-r3; clobbers r0-r5.
 */
export function localPortNetworkOrder(p: Probe, dst: Reg, sk: Reg): void {
  const tmp = p.stack(8);
  p.store("u64", r10, tmp, 0).stackPtr(r1, tmp).mov(r2, 2);
  p.mov(r3, sk).add(r3, p.layouts.structField("inet_sock", "inet_sport").offset);
  p.call("probe_read_kernel").load(dst, "u16", r10, tmp);
}

function sockOffset(p: Probe, path: string): number {
  return p.layouts.structField("sock", path).offset;
}

/** 16 bytes at sk + skOff to rec + recOff (an in6_addr). */
function copy16(p: Probe, rec: Reg, recOff: number, sk: Reg, skOff: number): void {
  if (p.btfTyped) {
    // in widest loads both offsets allow (the record need not put the field at 8)
    const width = [8, 4, 2, 1].find((w) => recOff % w === 0 && skOff % w === 0)!;
    const size = ({ 8: "u64", 4: "u32", 2: "u16", 1: "u8" } as const)[width as 8 | 4 | 2 | 1];
    for (let at = 0; at < 16; at += width) {
      p.load(r1, size, sk, skOff + at).store(size, rec, recOff + at, r1);
    }
    return;
  }
  p.mov(r3, sk).add(r3, skOff).mov(r1, rec).add(r1, recOff).mov(r2, 16).call("probe_read_kernel");
}

/** The two ends as text, from a decoded record. */
export interface SockEndpoints {
  /** IP version: 4 or 6 (an IPv4 peer of a dual-stack IPv6 socket is 6, ::ffff:a.b.c.d). */
  ip: 4 | 6;
  laddr: string;
  lport: number;
  raddr: string;
  rport: number;
}

/** Reads the endpoint fields of a decoded record. */
export function decodeSockEndpoints(e: {
  family: number;
  lport: number;
  dport: number;
  saddr: Uint8Array;
  daddr: Uint8Array;
}): SockEndpoints {
  return {
    ip: e.family === AF_INET6 ? 6 : 4,
    laddr: formatInetAddress(e.family, e.saddr),
    lport: ntohs(e.lport),
    raddr: formatInetAddress(e.family, e.daddr),
    rport: ntohs(e.dport),
  };
}

/**
 * Goes to `skip` unless the 16-bit value in `port` is one of `ports` (a
 * short chain of compares). skc_dport and inet_sport are in network byte
 * order: compare them with {@link networkOrder} values.
 */
export function skipUnlessPortIn(p: Probe, port: Reg, ports: number[], skip: Label): void {
  const match = p.label();
  for (const value of ports) p.jumpIf(port, "==", value, match);
  p.goto(skip).bind(match);
}

/** A port number as the kernel stores skc_dport / inet_sport (big endian, read as a u16). */
export function networkOrder(port: number): number {
  return ntohs(port);
}
