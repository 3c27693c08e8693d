/**
 * Block devices by name and by number: what `-d DISK` resolves to and what
 * `-D` prints. BPF programs see a device as the kernel's internal dev_t
 * (`major << 20 | minor`, as in `MKDEV` of include/linux/kdev_t.h and the
 * `dev` field of the block tracepoints); user space names it `loop0`, `vda`.
 *
 * Sources: `/sys/class/block/<name>/dev` ("7:0"), which lists every block
 * device including empty loop devices; `/proc/partitions` as the fallback
 * where sysfs is not mounted (libbpf-tools' partitions__load reads only that).
 *
 * @example
 * ```ts
 * import { diskByName, DiskNames } from "./disks.ts";
 * const vda = diskByName("vda"); // { name: "vda", major: 254, minor: 0, dev: 266338304, ... }
 * const names = new DiskNames();
 * names.nameOf(vda!.dev); // "vda"
 * ```
 *
 * @module
 */

/** Bits of the minor number in the kernel's internal dev_t. */
export const MINOR_BITS = 20;

/** One block device (a whole disk or a partition). */
export interface BlockDevice {
  /** Kernel name, as in /dev: "vda", "loop3", "nvme0n1p2". */
  name: string;
  /** Device major number (the driver). */
  major: number;
  /** Device minor number (the disk or partition within the driver). */
  minor: number;
  /** The kernel's internal dev_t: `major << 20 | minor`. */
  dev: number;
  /** True for a partition of a disk (sysfs has a `partition` file for it). */
  isPartition: boolean;
}

/** The kernel's internal dev_t of (major, minor), as the BPF side computes it. */
export function kernelDev(major: number, minor: number): number {
  return ((major << MINOR_BITS) | minor) >>> 0;
}

/** "major:minor" of a kernel dev_t, as /sys/class/block/NAME/dev spells it. */
export function devString(dev: number): string {
  return `${dev >>> MINOR_BITS}:${dev & ((1 << MINOR_BITS) - 1)}`;
}

const SYS_CLASS_BLOCK = "/sys/class/block";

function readText(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}

function parseMajorMinor(text: string): [number, number] | undefined {
  const m = text.trim().match(/^(\d+):(\d+)$/);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

function fromSysfs(name: string): BlockDevice | undefined {
  const text = readText(`${SYS_CLASS_BLOCK}/${name}/dev`);
  const mm = text === undefined ? undefined : parseMajorMinor(text);
  if (!mm) return undefined;
  const isPartition = readText(`${SYS_CLASS_BLOCK}/${name}/partition`) !== undefined;
  return { name, major: mm[0], minor: mm[1], dev: kernelDev(mm[0], mm[1]), isPartition };
}

/** Devices in /proc/partitions ("major minor #blocks name" after a header). */
function fromProcPartitions(): BlockDevice[] {
  const text = readText("/proc/partitions") ?? "";
  const out: BlockDevice[] = [];
  for (const line of text.split("\n")) {
    const m = line.trim().match(/^(\d+)\s+(\d+)\s+\d+\s+(\S+)$/);
    if (!m) continue;
    const [major, minor] = [Number(m[1]), Number(m[2])];
    // Without sysfs, a name ending in a digit after a disk name is a guess at best;
    // /proc/partitions does not say, so call nothing a partition.
    out.push({ name: m[3], major, minor, dev: kernelDev(major, minor), isPartition: false });
  }
  return out;
}

/** Every block device the system knows, from sysfs, or /proc/partitions without it. */
export function listBlockDevices(): BlockDevice[] {
  let names: string[];
  try {
    names = [...Deno.readDirSync(SYS_CLASS_BLOCK)].map((e) => e.name);
  } catch {
    return fromProcPartitions();
  }
  return names.sort().map(fromSysfs).filter((d): d is BlockDevice => d !== undefined);
}

/**
 * The device called `name` ("loop0", or "/dev/loop0"), or undefined when there
 * is none.
 */
export function diskByName(name: string): BlockDevice | undefined {
  const bare = name.replace(/^\/dev\//, "");
  if (!/^[\w.:+-]+$/.test(bare)) return undefined; // never a path outside sysfs
  return fromSysfs(bare) ?? fromProcPartitions().find((d) => d.name === bare);
}

/**
 * dev_t -> name, read once and re-read when a device appears that was not
 * there before (a loop device set up while a tool runs).
 */
export class DiskNames {
  #byDev = new Map<number, string>();

  constructor() {
    this.#reload();
  }

  #reload(): void {
    this.#byDev = new Map(listBlockDevices().map((d) => [d.dev, d.name]));
  }

  /** The name of device `dev` (kernel dev_t), or undefined when none has it. */
  nameOf(dev: number): string | undefined {
    if (!this.#byDev.has(dev)) this.#reload();
    return this.#byDev.get(dev);
  }
}
