/**
 * Histogram maps: declared once with their slot count, filled in BPF by
 * `histAdd`, read back in TypeScript by lib/cli/hist_maps.ts.
 *
 * Two shapes:
 * - `perCpu: true`: one entry (key 0) of a per-CPU array holding `slots` u64
 *   counters. Each CPU owns its copy, so the increment needs no atomic; user
 *   space sums the copies. The cheapest form, for one global histogram.
 * - otherwise: a hash from `keySize` bytes to `slots` u32 counters followed
 *   by `extraBytes` (a comm, say). Entries are created on first use; the
 *   increment is an atomic add.
 */
import type { MapDef } from "./maps.ts";
import { defineMap } from "./maps.ts";

/** A histogram map declaration: a MapDef plus its layout. */
export interface HistMapDef extends MapDef {
  /** Counters per histogram (buckets). */
  readonly slots: number;
  /** Bytes per counter: 8 (per-CPU u64) or 4 (shared u32). */
  readonly slotBytes: 4 | 8;
  /** Bytes after the counters (for a comm or other label). */
  readonly extraBytes: number;
}

/** Declares a histogram map. */
export function defineHistMap(opts: {
  name: string;
  slots: number;
  perCpu?: boolean;
  keySize?: number;
  extraBytes?: number;
  maxEntries?: number;
}): HistMapDef {
  const perCpu = opts.perCpu ?? false;
  const slotBytes = perCpu ? 8 : 4;
  const extraBytes = opts.extraBytes ?? 0;
  const def = defineMap({
    name: opts.name,
    type: perCpu ? "percpu_array" : "hash",
    keySize: perCpu ? 4 : opts.keySize ?? 4,
    valueSize: opts.slots * slotBytes + extraBytes,
    maxEntries: perCpu ? 1 : opts.maxEntries ?? 10240,
  });
  return Object.freeze({ ...def, slots: opts.slots, slotBytes, extraBytes });
}
