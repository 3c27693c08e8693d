/**
 * Map declarations. A tool declares each map once, by name, and programs refer
 * to the declaration; the loader creates the map and patches its fd into every
 * instruction that loads it.
 */
import type { MapTypeName } from "../../bytecode/prog_types.ts";

/** A declared map. `keySize`/`valueSize` are in bytes. */
export interface MapDef {
  /** Map name in the kernel: 1-15 characters of [A-Za-z0-9_.], unique per tool. */
  readonly name: string;
  /** Kernel map type ("hash", "percpu_array", "ringbuf"...). */
  readonly type: MapTypeName;
  /** Key bytes (0 for ring buffers). */
  readonly keySize: number;
  /** Value bytes (per CPU for per-CPU maps; 0 for ring buffers). */
  readonly valueSize: number;
  /** Capacity in entries (a ring buffer's size in bytes). */
  readonly maxEntries: number;
  /** BPF_F_* map_flags (e.g. BPF_F_NO_PREALLOC for a hash). */
  readonly flags?: number;
}

/**
 * Declares a map.
 *
 * @example
 * ```ts
 * const start = defineMap({ name: "start", type: "hash", keySize: 4, valueSize: 8, maxEntries: 10240 });
 * ```
 */
export function defineMap(def: MapDef): MapDef {
  if (!/^[A-Za-z0-9_.]{1,15}$/.test(def.name)) {
    throw new Error(`map name '${def.name}' must be 1-15 characters of [A-Za-z0-9_.]`);
  }
  return Object.freeze({ ...def });
}
