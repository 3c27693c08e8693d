/**
 * Active TCP opens without kprobes: who connects, seen at the one moment
 * the connecting process is current. tcp_v4_connect()/tcp_v6_connect() set
 * the socket to SYN_SENT from the connect() system call, so
 * sock:inet_sock_set_state (CLOSE -> SYN_SENT) runs in that process, with
 * the destination and the source address already set (the local port is
 * chosen right after). The handshake ends when the socket leaves SYN_SENT:
 * ESTABLISHED on the SYN-ACK (softirq), CLOSE on a reset, a time-out or a
 * close(). bcc's tcpconnect and tcpconnlat use kprobes on tcp_v4_connect
 * and tcp_rcv_state_process for the same two moments.
 *
 * The start is kept per socket (its address is the key) in a hash map:
 * {@link connectStart}.
 *
 * @example
 * ```ts
 * const starts = connectStartsMap("starts");
 * const p = tpBtf("inet_sock_set_state", { allowPointerLeaks: true });
 * const key = p.stack(8), done = p.label();
 * p.ctx(r7, "sk").store("u64", r10, key, r7);
 * p.ctx(r8, "newstate").jumpIf(r8, "!=", TCP.SYN_SENT, done);
 * rememberConnect(p, starts, key, r7, {}, done);
 * p.bind(done).ret(0);
 * ```
 *
 * @module
 */
import { TCP } from "../format/tcp_states.ts";
import type { Label } from "./builder.ts";
import { defineMap, type MapDef } from "./maps.ts";
import type { Probe } from "./program.ts";
import { r0, r1, r10, r2, type Reg } from "./registers.ts";
import { char, defineSchema } from "./schema.ts";
import { networkOrder, skipUnlessPortIn } from "./sock.ts";

export { TCP };

/** What is known when a connect starts: when, and who (the value of the starts map). */
export const connectStart = defineSchema("connect_start", {
  ts_ns: "u64",
  comm: char(16),
  pid: "u32",
  uid: "u32",
});

/** Connects followed at once (as the originals' start maps). */
export const MAX_CONNECTS = 10240;

/** struct sock * -> {@link connectStart}. */
export function connectStartsMap(name: string): MapDef {
  return defineMap({
    name,
    type: "hash",
    keySize: 8,
    valueSize: connectStart.size,
    maxEntries: MAX_CONNECTS,
  });
}

/** Filters on the connecting process and the destination, applied when the connect starts. */
export interface ConnectFilter {
  /** Only this process (TGID). */
  pid?: number;
  /** Only this user (the real UID, as bcc's -u). */
  uid?: number;
  /** Only these destination ports. */
  remotePorts?: number[];
}

/**
 * At CLOSE -> SYN_SENT (the connecting process is current): starts[sk] =
 * {now, comm, pid, uid}, unless a filter says no (then a jump to `skip`).
 * The key (the socket's address) is at r10+keyOff; `sk` (r7-r9) is the
 * socket, readable by field. Clobbers r0-r5.
 */
export function rememberConnect(
  p: Probe,
  starts: MapDef,
  keyOff: number,
  sk: Reg,
  filter: ConnectFilter,
  skip: Label,
): void {
  const start = p.stack(connectStart.size);
  if (filter.remotePorts) {
    p.field(r1, sk, "sock", "__sk_common.skc_dport");
    skipUnlessPortIn(p, r1, filter.remotePorts.map(networkOrder), skip);
  }
  p.call("get_current_pid_tgid").rsh(r0, 32);
  if (filter.pid !== undefined) p.jumpIf(r0, "!=", filter.pid, skip);
  p.store("u32", r10, start + connectStart.offset("pid"), r0);
  p.call("get_current_uid_gid").mov32(r0, r0);
  if (filter.uid !== undefined) p.jumpIf(r0, "!=", filter.uid, skip);
  p.store("u32", r10, start + connectStart.offset("uid"), r0);
  p.stackPtr(r1, start + connectStart.offset("comm")).mov(r2, 16).call("get_current_comm");
  p.ktime(r0).store("u64", r10, start + connectStart.offset("ts_ns"), r0);
  p.update(starts, keyOff, start);
}

/** Copies the start's comm (at `start`, a map value) into `rec` + `recOff`. Clobbers r1. */
export function copyStartComm(p: Probe, rec: Reg, recOff: number, start: Reg): void {
  for (const half of [0, 8]) {
    p.load(r1, "u64", start, connectStart.offset("comm") + half);
    p.store("u64", rec, recOff + half, r1);
  }
}
