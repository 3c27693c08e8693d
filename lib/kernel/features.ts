/**
 * What this kernel can do. Each feature is probed once, on first use, and the
 * answer cached here for the process (as cilium/ebpf's `features`): tools pick
 * the best attach path, or say in one line what is missing.
 *
 * @module
 */
import { FeatureMissingError } from "./errors.ts";
import { bpf } from "./libbpf.ts";
import { libc, pageSize } from "./libc.ts";

/** The one cache: feature name -> answer. */
const probed = new Map<string, unknown>();

/**
 * `probe()`'s answer, computed once per process. A probe that cannot tell
 * (returns undefined) is asked again next time.
 */
function feature<T>(name: string, probe: () => T | undefined): T | undefined {
  if (probed.has(name)) return probed.get(name) as T;
  const answer = probe();
  if (answer !== undefined) probed.set(name, answer);
  return answer;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** vmlinux BTF: struct layouts and tp_btf targets (CONFIG_DEBUG_INFO_BTF, 5.4). */
export function hasVmlinuxBtf(): boolean {
  return feature("vmlinux BTF", () => exists("/sys/kernel/btf/vmlinux"))!;
}

/** kprobes: the kprobe PMU, or kprobe_events in tracefs (CONFIG_KPROBE_EVENTS). */
export function hasKprobes(): boolean {
  return feature("kprobes", () =>
    exists("/sys/bus/event_source/devices/kprobe") ||
    exists("/sys/kernel/tracing/kprobe_events") ||
    exists("/sys/kernel/debug/tracing/kprobe_events"))!;
}

/** uprobes: the uprobe PMU (CONFIG_UPROBE_EVENTS, 4.17). */
export function hasUprobes(): boolean {
  return feature("uprobes", () => exists("/sys/bus/event_source/devices/uprobe"))!;
}

const BPF_MAP_TYPE_RINGBUF = 27;

/**
 * BPF ring buffers (5.8): creates (and closes) a one-page ring buffer map.
 * Without the privilege to ask (EPERM) the answer is yes, uncached: the
 * privilege check that comes next explains what is missing.
 */
export function ringbufSupported(): boolean {
  return feature("ring buffers", () => {
    const opts = new Uint8Array(48);
    new DataView(opts.buffer).setBigUint64(0, 48n, true);
    const fd = bpf().bpf_map_create(BPF_MAP_TYPE_RINGBUF, null, 0, 0, pageSize(), opts);
    if (fd >= 0) libc().close(fd);
    if (fd === -1) return undefined; // EPERM
    return fd >= 0;
  }) ?? true;
}

/** A dynamic perf PMU (kprobe, uprobe): its type, and the config bit of a return probe. */
export interface DynamicPmu {
  type: number;
  retBit: number;
}

/** The kprobe or uprobe PMU, or a FeatureMissingError naming the kernel option. */
export function dynamicPmu(kind: "kprobe" | "uprobe"): DynamicPmu {
  const pmu = feature(`${kind} PMU`, () => {
    const dir = `/sys/bus/event_source/devices/${kind}`;
    let type: number;
    try {
      type = Number(Deno.readTextFileSync(`${dir}/type`).trim());
    } catch {
      return null;
    }
    let retBit = 0;
    try {
      const m = Deno.readTextFileSync(`${dir}/format/retprobe`).match(/config:(\d+)/);
      if (m) retBit = Number(m[1]);
    } catch { /* the bit defaults to 0, as in every kernel so far */ }
    return { type, retBit };
  });
  if (!pmu) {
    throw new FeatureMissingError(
      kind === "kprobe"
        ? "kprobes are not enabled in this kernel (CONFIG_KPROBE_EVENTS)"
        : "uprobes are not enabled in this kernel (CONFIG_UPROBE_EVENTS)",
    );
  }
  return pmu;
}

/** Throws the one-line error tools print when kprobes are needed and absent. */
export function requireKprobes(what: string): void {
  if (!hasKprobes()) {
    throw new FeatureMissingError(
      `${what} needs kprobes, which this kernel does not have (CONFIG_KPROBE_EVENTS is off)`,
    );
  }
}

/** Throws when vmlinux BTF is absent (tools read struct offsets from it). */
export function requireVmlinuxBtf(): void {
  if (!hasVmlinuxBtf()) {
    throw new FeatureMissingError(
      "this kernel has no BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF): struct layouts are unknown",
    );
  }
}
