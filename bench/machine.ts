/** The machine a benchmark ran on, so its figures can be compared later. */

/** Kernel, CPUs and date of a run. */
export interface MachineInfo {
  kernel: string;
  arch: string;
  cpus: number;
  cpuModel: string;
  /** ISO 8601, UTC. */
  date: string;
  deno: string;
}

/** Reads the machine description from Deno and /proc. */
export function describeMachine(): MachineInfo {
  let cpuModel = "unknown";
  try {
    const cpuinfo = Deno.readTextFileSync("/proc/cpuinfo");
    cpuModel = cpuinfo.match(/^model name\s*:\s*(.+)$/m)?.[1]?.trim() ?? cpuModel;
  } catch {
    // Not Linux, or /proc hidden: the model is only informative.
  }
  return {
    kernel: Deno.osRelease(),
    arch: Deno.build.arch,
    cpus: navigator.hardwareConcurrency,
    cpuModel,
    date: new Date().toISOString(),
    deno: Deno.version.deno,
  };
}

/** One Markdown line: "Machine: Linux 6.18.0 x86_64, 2 CPUs (model), ..." */
export function machineLine(machine: MachineInfo, extras: string[]): string {
  const parts = [
    `Linux ${machine.kernel} ${machine.arch}`,
    `${machine.cpus} CPUs (${machine.cpuModel})`,
    ...extras,
    machine.date,
  ];
  return `Machine: ${parts.join(", ")}`;
}
