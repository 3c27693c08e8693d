/**
 * Map declarations. A tool declares each map once, by name, and programs refer
 * to the declaration; the loader creates the map and patches its fd into every
 * instruction that loads it.
 */
import type { MapTypeName } from "../../bytecode/prog_types.ts";

/** A declared map. `keySize`/`valueSize` are in bytes. */
export interface MapDef {
  readonly name: string;
  readonly type: MapTypeName;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
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
