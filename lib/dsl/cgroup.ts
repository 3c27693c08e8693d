/**
 * `-c CG` filters, as libbpf-tools do them: the cgroup v2 directory's fd in
 * slot 0 of a cgroup array (filled before attaching with setCgroup of
 * lib/kernel/map.ts), and bpf_current_task_under_cgroup() in the program.
 *
 * @example
 * ```ts ignore
 * import { cgroupMap, skipUnlessInCgroup } from "./cgroup.ts";
 * // BPF: skipUnlessInCgroup(p, done);
 * // before attaching: setCgroup(session.maps.get(cgroupMap)!, "/sys/fs/cgroup/x");
 * ```
 *
 * @module
 */
import type { Label, ProgramBuilder } from "./builder.ts";
import { defineMap } from "./maps.ts";
import { r0, r1, r2 } from "./registers.ts";

/** The cgroup of -c, in slot 0. */
export const cgroupMap = defineMap({
  name: "cgroup_map",
  type: "cgroup_array",
  keySize: 4,
  valueSize: 4,
  maxEntries: 1,
});

/** Jumps to `skip` unless the current task is under the cgroup in {@link cgroupMap}. Clobbers r0-r5. */
export function skipUnlessInCgroup(p: ProgramBuilder, skip: Label): void {
  p.loadMap(r1, cgroupMap).mov(r2, 0).call("current_task_under_cgroup").jumpIf(r0, "==", 0, skip);
}
