/**
 * Map flags that restrict what programs may do with map values, as the
 * kernel's `bpf_map_flags_to_cap` reads them: BPF_F_RDONLY_PROG forbids
 * writes from programs, BPF_F_WRONLY_PROG forbids reads. Both apply to
 * loads, stores, atomics (a read and a write) and helper buffers alike.
 *
 * @module
 */

import type { MapInfo } from "./types.ts";

/** `BPF_F_RDONLY_PROG`: programs may only read values. */
export const BPF_F_RDONLY_PROG = 1 << 7;
/** `BPF_F_WRONLY_PROG`: programs may only write values. */
export const BPF_F_WRONLY_PROG = 1 << 8;

/** Why a program may not read (or write) this map's values, or undefined when it may. */
export function mapAccessForbidden(map: MapInfo, write: boolean): string | undefined {
  const flags = map.flags ?? 0;
  const name = map.name ? `map ${map.name}` : "the map";
  if (write && (flags & BPF_F_RDONLY_PROG)) {
    return `${name} was created with BPF_F_RDONLY_PROG: programs may not write its values`;
  }
  if (!write && (flags & BPF_F_WRONLY_PROG)) {
    return `${name} was created with BPF_F_WRONLY_PROG: programs may not read its values`;
  }
  return undefined;
}
