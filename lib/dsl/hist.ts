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
 *
 * With `sum: true` the value also keeps a u64 running sum of the values
 * counted (at `sumOffset`, 8-byte aligned after the counters and extra
 * bytes), added by `histAdd`'s `sum` option: the exporters' `_sum`
 * (log2 slots alone lose the values). Tools ask for it only when exporting.
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
  /** Offset of the u64 sum of the values counted, within each CPU's or entry's value; absent without `sum`. */
  readonly sumOffset?: number;
}

/** Declares a histogram map. */
export function defineHistMap(opts: {
  name: string;
  slots: number;
  perCpu?: boolean;
  keySize?: number;
  extraBytes?: number;
  maxEntries?: number;
  /** Keep a u64 sum of the values beside the counts (see the module doc). */
  sum?: boolean;
}): HistMapDef {
  const perCpu = opts.perCpu ?? false;
  const slotBytes = perCpu ? 8 : 4;
  const extraBytes = opts.extraBytes ?? 0;
  const end = opts.slots * slotBytes + extraBytes;
  const sumOffset = opts.sum ? Math.ceil(end / 8) * 8 : undefined;
  const def = defineMap({
    name: opts.name,
    type: perCpu ? "percpu_array" : "hash",
    keySize: perCpu ? 4 : opts.keySize ?? 4,
    valueSize: sumOffset === undefined ? end : sumOffset + 8,
    maxEntries: perCpu ? 1 : opts.maxEntries ?? 10240,
  });
  return Object.freeze({
    ...def,
    slots: opts.slots,
    slotBytes,
    extraBytes,
    ...(sumOffset === undefined ? {} : { sumOffset }),
  });
}
