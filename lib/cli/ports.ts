/** Port-list flags of the network tools (`-L 80,443`), as bcc parses them. */
import { UsageError } from "./usage.ts";

/** The most ports one list may hold (each one is a compare in the BPF program). */
export const MAX_PORTS = 64;

/**
 * Parses a comma-separated list of TCP/UDP ports (1-65535); throws a
 * UsageError naming the flag. Duplicates are dropped.
 *
 * @example
 * ```ts
 * import { portList } from "./ports.ts";
 * portList("80,443", "-L"); // [80, 443]
 * ```
 */
export function portList(value: string, flag: string): number[] {
  const ports: number[] = [];
  for (const part of value.split(",")) {
    const port = Number(part);
    if (!/^\d+$/.test(part) || port < 1 || port > 65535) {
      throw new UsageError(`invalid port '${part}' in ${flag} ${value}`);
    }
    if (!ports.includes(port)) ports.push(port);
  }
  if (ports.length > MAX_PORTS) {
    throw new UsageError(`too many ports in ${flag} (at most ${MAX_PORTS})`);
  }
  return ports;
}
