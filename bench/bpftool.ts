/**
 * What the kernel says about loaded BPF programs, through bpftool's JSON
 * output, and the sysctl that makes it count run time per program.
 */

/** One entry of `bpftool -j prog show` (the fields the benchmark uses). */
export interface ProgInfo {
  id: number;
  type: string;
  name: string;
  /** Total ns spent in the program while kernel.bpf_stats_enabled was 1. */
  run_time_ns?: number;
  /** Runs counted while kernel.bpf_stats_enabled was 1. */
  run_cnt?: number;
  bytes_xlated?: number;
}

/** One entry of `bpftool -j perf show`: a program a process attached to an event. */
export interface PerfAttachment {
  pid: number;
  fd: number;
  prog_id: number;
  fd_type: string;
  tracepoint?: string;
}

/** Runs bpftool with `-j` and parses its JSON; throws with bpftool's message on failure. */
async function bpftoolJson<T>(bpftool: string, args: string[]): Promise<T> {
  const out = await new Deno.Command(bpftool, { args: ["-j", ...args], stdin: "null" }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim();
    throw new Error(`bpftool ${args.join(" ")}: ${err || text || `exit ${out.code}`}`);
  }
  return JSON.parse(text || "[]") as T;
}

/** Every loaded program, by id. */
export async function listPrograms(bpftool: string): Promise<Map<number, ProgInfo>> {
  const progs = await bpftoolJson<ProgInfo[]>(bpftool, ["prog", "show"]);
  return new Map(progs.map((p) => [p.id, p]));
}

/** Programs attached to tracepoints and perf events, with the pid holding each. */
export function listPerfAttachments(bpftool: string): Promise<PerfAttachment[]> {
  return bpftoolJson<PerfAttachment[]>(bpftool, ["perf", "show"]);
}

const STATS_SYSCTL = "/proc/sys/kernel/bpf_stats_enabled";

/** Current value of kernel.bpf_stats_enabled ("0" or "1"). */
export function readStatsEnabled(): string {
  return Deno.readTextFileSync(STATS_SYSCTL).trim();
}

/** Sets kernel.bpf_stats_enabled, like `sysctl -w kernel.bpf_stats_enabled=VALUE`. */
export function writeStatsEnabled(value: string): void {
  Deno.writeTextFileSync(STATS_SYSCTL, `${value}\n`);
}
