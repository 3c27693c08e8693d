/**
 * TCP states as the kernel numbers them (include/net/tcp_states.h) and as
 * bcc's and libbpf-tools' network tools name them (without the TCP_ prefix).
 *
 * @example
 * ```ts
 * import { TCP, tcpStateName } from "./tcp_states.ts";
 * tcpStateName(TCP.SYN_SENT); // "SYN_SENT"
 * ```
 *
 * @module
 */

/** State numbers, by name. */
export const TCP = {
  ESTABLISHED: 1,
  SYN_SENT: 2,
  SYN_RECV: 3,
  FIN_WAIT1: 4,
  FIN_WAIT2: 5,
  TIME_WAIT: 6,
  CLOSE: 7,
  CLOSE_WAIT: 8,
  LAST_ACK: 9,
  LISTEN: 10,
  CLOSING: 11,
  NEW_SYN_RECV: 12,
} as const;

const NAMES = Object.fromEntries(Object.entries(TCP).map(([k, v]) => [v, k])) as Record<
  number,
  string
>;

/** A state's name ("ESTABLISHED"), or "UNKNOWN" for a number the kernel does not define. */
export function tcpStateName(state: number): string {
  return NAMES[state] ?? "UNKNOWN";
}
