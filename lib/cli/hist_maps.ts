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
  /** The running sum of the values counted, for a map declared with `sum` (its unit is the tool's). */
  sum?: number;
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
    let sum = 0n;
    if (value) {
      const v = new DataView(value.buffer);
      const stride = Math.ceil(def.valueSize / 8) * 8;
      for (let cpu = 0; cpu < value.length; cpu += stride) {
        for (let i = 0; i < def.slots; i++) slots[i] += Number(v.getBigUint64(cpu + 8 * i, true));
        if (def.sumOffset !== undefined) sum += v.getBigUint64(cpu + def.sumOffset, true);
      }
    }
    map.update(key, new Uint8Array(map.valueBytes));
    const extra = new Uint8Array(0);
    return [
      def.sumOffset === undefined ? { key, slots, extra } : { key, slots, extra, sum: Number(sum) },
    ];
  }
  const out: HistogramRead[] = [];
  for (const [key, value] of map.entries()) {
    const v = new DataView(value.buffer);
    out.push({
      key,
      slots: Array.from({ length: def.slots }, (_, i) => v.getUint32(4 * i, true)),
      extra: value.slice(4 * def.slots, 4 * def.slots + def.extraBytes),
      ...(def.sumOffset === undefined ? {} : { sum: Number(v.getBigUint64(def.sumOffset, true)) }),
    });
    map.delete(key);
  }
  return out;
}
