/**
 * What this kernel can do, probed once at start so a tool can pick the best
 * attach path, or say in one line what is missing.
 */
import { FeatureMissingError } from "./errors.ts";

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** vmlinux BTF: struct layouts and tp_btf targets. */
export function hasVmlinuxBtf(): boolean {
  return exists("/sys/kernel/btf/vmlinux");
}

/** kprobes: the kprobe PMU, or kprobe_events in tracefs (CONFIG_KPROBE_EVENTS). */
export function hasKprobes(): boolean {
  return exists("/sys/bus/event_source/devices/kprobe") ||
    exists("/sys/kernel/tracing/kprobe_events") ||
    exists("/sys/kernel/debug/tracing/kprobe_events");
}

/** uprobes: the uprobe PMU (CONFIG_UPROBE_EVENTS). */
export function hasUprobes(): boolean {
  return exists("/sys/bus/event_source/devices/uprobe");
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
