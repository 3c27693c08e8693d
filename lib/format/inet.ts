/**
 * IP addresses as text, the way glibc's inet_ntop(3) writes them (and so
 * bcc's and libbpf-tools' network tools): dotted quads for IPv4; for IPv6,
 * lowercase hex groups with the longest run of two or more zero groups
 * shortened to "::" (the first one on a tie), and an embedded IPv4 address
 * for IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d) forms.
 *
 * @module
 */

/** Address family numbers as Linux defines them. */
export const AF_INET = 2;
/** Address family numbers as Linux defines them. */
export const AF_INET6 = 10;

/**
 * An IPv4 address (4 bytes, network order) as a dotted quad.
 *
 * @example
 * ```ts
 * import { formatIpv4 } from "./inet.ts";
 * formatIpv4(Uint8Array.of(127, 0, 0, 1)); // "127.0.0.1"
 * ```
 */
export function formatIpv4(bytes: Uint8Array): string {
  return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
}

/**
 * An IPv6 address (16 bytes, network order) as inet_ntop(AF_INET6) writes it.
 *
 * @example
 * ```ts
 * import { formatIpv6 } from "./inet.ts";
 * formatIpv6(Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1)); // "::1"
 * ```
 */
export function formatIpv6(bytes: Uint8Array): string {
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push((bytes[2 * i] << 8) | bytes[2 * i + 1]);
  // The longest run of zero groups (at least two), the first on a tie.
  let best = { base: -1, len: 0 };
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > best.len) best = { base: i, len: j - i };
    i = j;
  }
  if (best.len < 2) best = { base: -1, len: 0 };
  let out = "";
  for (let i = 0; i < 8; i++) {
    if (i >= best.base && i < best.base + best.len) {
      if (i === best.base) out += ":";
      continue;
    }
    if (i !== 0) out += ":";
    // glibc: ::a.b.c.d and ::ffff:a.b.c.d keep their IPv4 tail in dotted form
    if (i === 6 && best.base === 0 && (best.len === 6 || (best.len === 5 && words[5] === 0xffff))) {
      return out + formatIpv4(bytes.subarray(12, 16));
    }
    out += words[i].toString(16);
  }
  if (best.base !== -1 && best.base + best.len === 8) out += ":";
  return out;
}

/**
 * An address of family AF_INET (the first 4 bytes) or AF_INET6 (16 bytes).
 *
 * @example
 * ```ts
 * import { AF_INET, formatInetAddress } from "./inet.ts";
 * formatInetAddress(AF_INET, Uint8Array.of(10, 1, 2, 3)); // "10.1.2.3"
 * ```
 */
export function formatInetAddress(family: number, bytes: Uint8Array): string {
  if (family === AF_INET) return formatIpv4(bytes);
  if (family === AF_INET6) return formatIpv6(bytes);
  throw new Error(`unknown address family ${family}`);
}

/** A 16-bit value in network byte order (as the kernel keeps skc_dport) in host order. */
export function ntohs(value: number): number {
  return ((value & 0xff) << 8) | ((value >> 8) & 0xff);
}
