/**
 * Reading histogram maps (lib/dsl/hist.ts) at the end of each interval, and
 * clearing them for the next, as the libbpf-tools do.
 */
import type { HistMapDef } from "../dsl/hist.ts";
import type { BpfMap } from "../kernel/map.ts";

/** One histogram: its key bytes, counts by slot, and the extra bytes after them. */
export interface HistogramRead {
  /** The map key as stored (4 zero bytes for the one entry of a per-CPU histogram). */
  key: Uint8Array<ArrayBuffer>;
  /** Counts by slot (bucket index); a per-CPU histogram's are summed over CPUs. */
  slots: number[];
  /** The value's `extraBytes` after the counters (a comm, say); empty when per-CPU. */
  extra: Uint8Array<ArrayBuffer>;
}

/**
 * Reads and clears every histogram in `map`. A per-CPU histogram comes back
 * as one entry, the sum over CPUs.
 */
export function drainHistograms(map: BpfMap, def: HistMapDef): HistogramRead[] {
  if (def.slotBytes === 8) {
    const key = new Uint8Array(4);
    const value = map.lookup(key);
    const slots = new Array(def.slots).fill(0);
    if (value) {
      const v = new DataView(value.buffer);
      const stride = Math.ceil(def.valueSize / 8) * 8;
      for (let cpu = 0; cpu < value.length; cpu += stride) {
        for (let i = 0; i < def.slots; i++) slots[i] += Number(v.getBigUint64(cpu + 8 * i, true));
      }
    }
    map.update(key, new Uint8Array(map.valueBytes));
    return [{ key, slots, extra: new Uint8Array(0) }];
  }
  const out: HistogramRead[] = [];
  for (const [key, value] of map.entries()) {
    const v = new DataView(value.buffer);
    out.push({
      key,
      slots: Array.from({ length: def.slots }, (_, i) => v.getUint32(4 * i, true)),
      extra: value.slice(4 * def.slots),
    });
    map.delete(key);
  }
  return out;
}

/** `[{low, high, count}]` for --json output of a log2 histogram (slot i: [2^i, 2^(i+1)-1], slot 0: [0, 1]). */
export function log2Buckets(slots: number[]): { low: number; high: number; count: number }[] {
  return slots.map((count, i) => ({ low: i === 0 ? 0 : 2 ** i, high: 2 ** (i + 1) - 1, count }));
}
