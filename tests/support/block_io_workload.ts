/**
 * Block I/O whose truth is known, for biolatency and bitesize: a file-backed
 * loop device made for the test (direct I/O to its backing file, so its own
 * requests are exactly the workload's), and a process that does a known
 * number of O_DIRECT reads and writes of known sizes on it, one request each.
 */
import { runOk } from "./process.ts";

/** One batch of requests: `count` O_DIRECT reads or writes of `bytes` each. */
export interface IoBatch {
  op: "read" | "write";
  bytes: number;
  count: number;
}

/** The workload of the biolatency and bitesize tests. */
export const STANDARD_WORKLOAD: IoBatch[] = [
  { op: "write", bytes: 4096, count: 16 },
  { op: "write", bytes: 65536, count: 8 },
  { op: "read", bytes: 4096, count: 16 },
  { op: "read", bytes: 65536, count: 8 },
];

/** The process name the workload runs under (so a -c filter can pick it). */
export const WORKLOAD_COMM = "bioworkload";

/** Runs a command (killed at its deadline); its stdout, or an error with its stderr. */
async function run(cmd: string, args: string[]): Promise<string> {
  return await runOk(cmd, args);
}

/** A loop device over a sparse temporary file; `remove()` detaches it and deletes the file. */
export class LoopDevice {
  private constructor(readonly path: string, readonly backing: string) {}

  /** "loop3". */
  get name(): string {
    return this.path.replace("/dev/", "");
  }

  /**
   * Sets one up with direct I/O to the backing file. `scheduler` picks the
   * device's I/O scheduler ("none", "mq-deadline"): with one, every request is
   * inserted into the scheduler before it is issued.
   */
  static async create(sizeMiB = 32, scheduler?: string): Promise<LoopDevice> {
    const backing = await Deno.makeTempFile({ prefix: "bpftk-blockio-", suffix: ".img" });
    await Deno.truncate(backing, sizeMiB << 20);
    let path: string;
    try {
      path = (await run("losetup", ["--find", "--show", "--direct-io=on", backing])).trim();
    } catch (e) {
      await Deno.remove(backing);
      throw e;
    }
    const dev = new LoopDevice(path, backing);
    // Where udev runs, let its probe of the new device (blkid reads) finish first.
    await run("udevadm", ["settle"]).catch(() => {});
    if (scheduler) {
      try {
        await Deno.writeTextFile(`/sys/block/${dev.name}/queue/scheduler`, scheduler);
      } catch (e) {
        await dev.remove();
        throw e;
      }
    }
    return dev;
  }

  async remove(): Promise<void> {
    try {
      await run("losetup", ["-d", this.path]);
    } finally {
      await Deno.remove(this.backing).catch(() => {});
    }
  }
}

const WORKLOAD_PY = `
import mmap, os, sys
open("/proc/self/comm", "w").write(sys.argv[1])
fd = os.open(sys.argv[2], (os.O_RDWR | os.O_DIRECT))
offset = 0
for spec in sys.argv[3:]:
    op, size, count = spec.split(":")
    size, count = int(size), int(count)
    buf = mmap.mmap(-1, size)  # page-aligned, as O_DIRECT wants
    for _ in range(count):
        n = os.pwritev(fd, [buf], offset) if op == "write" else os.preadv(fd, [buf], offset)
        assert n == size, (op, size, n)
        offset += size
os.close(fd)
`;

/**
 * Runs the batches on `device` as one process named `comm`, in cgroup v2
 * directory `cgroup` when given. Resolves when every request has completed.
 */
export async function runBlockWorkload(
  device: LoopDevice,
  batches: IoBatch[] = STANDARD_WORKLOAD,
  opts: { comm?: string; cgroup?: string } = {},
): Promise<void> {
  const specs = batches.map((b) => `${b.op}:${b.bytes}:${b.count}`);
  const join = opts.cgroup ? `echo $$ > '${opts.cgroup}/cgroup.procs' && ` : "";
  await run("bash", [
    "-c",
    `${join}exec python3 -c "$0" "$@"`,
    WORKLOAD_PY,
    opts.comm ?? WORKLOAD_COMM,
    device.path,
    ...specs,
  ]);
}

/** Number of requests in `batches`. */
export function requestCount(batches: IoBatch[] = STANDARD_WORKLOAD): number {
  return batches.reduce((n, b) => n + b.count, 0);
}

/** A libbpf-tools binary run beside ours for a cross-check, line-buffered through stdbuf. */
export { ReferenceTool } from "./event_tools.ts";
