/**
 * The file systems the fsslower tools trace, told apart by their superblock
 * magic (super_block.s_magic, from include/uapi/linux/magic.h and the file
 * systems' sources), and whether this kernel has them.
 *
 * @module
 */
/** One traceable file system. */
export interface FileSystem {
  /** The name in /proc/filesystems and in the tool's name ("xfs" -> xfsslower). */
  name: string;
  /** As bcc's banner spells it ("Tracing XFS operations"). */
  title: string;
  /** super_block.s_magic of its mounts. */
  magic: number;
  /** Other types in /proc/mounts with the same magic (ext2 and ext3 mounted by ext4). */
  alsoMountedAs?: readonly string[];
}

/** The file systems with an fsslower tool (bcc: xfsslower, ext4slower, btrfsslower, zfsslower). */
export const FILESYSTEMS = {
  xfs: { name: "xfs", title: "XFS", magic: 0x58465342 }, // XFS_SUPER_MAGIC "XFSB"
  // EXT4_SUPER_MAGIC, shared with ext2/ext3 (which the ext4 driver also mounts)
  ext4: { name: "ext4", title: "ext4", magic: 0xef53, alsoMountedAs: ["ext3", "ext2"] },
  btrfs: { name: "btrfs", title: "btrfs", magic: 0x9123683e }, // BTRFS_SUPER_MAGIC
  zfs: { name: "zfs", title: "ZFS", magic: 0x2fc12fc1 }, // ZFS_SUPER_MAGIC (OpenZFS)
} as const satisfies Record<string, FileSystem>;

/** A file system with an fsslower tool. */
export type FsName = keyof typeof FILESYSTEMS;

/** Whether the kernel has the file system registered (built in, or its module loaded). */
export function fsRegistered(name: string, procFilesystems?: string): boolean {
  const text = procFilesystems ?? Deno.readTextFileSync("/proc/filesystems");
  return text.split("\n").some((line) => line.split("\t").at(-1)?.trim() === name);
}

/**
 * Why nothing may match (the file system is not in the kernel, or not
 * mounted now), or undefined when it is mounted. `mounts` is /proc/self/mounts.
 */
export function unmountedReason(
  fs: FileSystem,
  procFilesystems: string,
  mounts: string,
): string | undefined {
  const types = [fs.name, ...fs.alsoMountedAs ?? []];
  if (mounts.split("\n").some((line) => types.includes(line.split(" ")[2]))) return undefined;
  if (!fsRegistered(fs.name, procFilesystems)) {
    return `${fs.name} is not available in this kernel (not in /proc/filesystems: ` +
      `is the ${fs.name} module loaded?)`;
  }
  return `no ${fs.name} file system is mounted now`;
}

/**
 * Warns once on stderr when no file system of this type is mounted: the
 * tool traces anyway (one may be mounted later) but may show nothing.
 */
export function warnUnlessMounted(fs: FileSystem): void {
  const read = (path: string) => {
    try {
      return Deno.readTextFileSync(path);
    } catch {
      return "";
    }
  };
  const why = unmountedReason(fs, read("/proc/filesystems"), read("/proc/self/mounts"));
  if (why) console.error(`warning: ${why}: nothing may match`);
}
