/** Do we have what loading BPF programs takes? Checked before any kernel call. */
import { PermissionError } from "./errors.ts";

const CAP_SYS_ADMIN = 21n;
const CAP_PERFMON = 38n;
const CAP_BPF = 39n;

/** The effective capability mask of this process, from /proc/self/status. */
function effectiveCaps(): bigint {
  try {
    const status = Deno.readTextFileSync("/proc/self/status");
    const hex = status.match(/^CapEff:\s*([0-9a-f]+)/m)?.[1];
    return hex ? BigInt(`0x${hex}`) : 0n;
  } catch {
    return 0n;
  }
}

/**
 * Throws a one-line PermissionError unless this process may load tracing
 * programs: root, CAP_SYS_ADMIN, or CAP_BPF with CAP_PERFMON.
 */
export function requireBpfPrivileges(): void {
  const caps = effectiveCaps();
  const has = (cap: bigint) => (caps & (1n << cap)) !== 0n;
  if (has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON))) return;
  const missing = [CAP_BPF, CAP_PERFMON].filter((c) => !has(c)).map((c) =>
    c === CAP_BPF ? "CAP_BPF" : "CAP_PERFMON"
  );
  throw new PermissionError(
    `permission denied: BPF tracing needs root (or ${missing.join(" and ")}); try sudo`,
  );
}
