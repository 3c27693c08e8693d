/**
 * The file systems the fsslower tools trace, told apart by their superblock
 * magic (super_block.s_magic, from include/uapi/linux/magic.h and the file
 * systems' sources), and whether this kernel has them.
 *
 * @module
 */
import { FeatureMissingError } from "../kernel/errors.ts";

/** One traceable file system. */
export interface FileSystem {
  /** The name in /proc/filesystems and in the tool's name ("xfs" -> xfsslower). */
  name: string;
  /** super_block.s_magic of its mounts. */
  magic: number;
}

/** The file systems with an fsslower tool (bcc: xfsslower, ext4slower, btrfsslower, zfsslower). */
export const FILESYSTEMS = {
  xfs: { name: "xfs", magic: 0x58465342 }, // XFS_SUPER_MAGIC "XFSB"
  // EXT4_SUPER_MAGIC, shared with ext2/ext3 (which the ext4 driver also mounts)
  ext4: { name: "ext4", magic: 0xef53 },
  btrfs: { name: "btrfs", magic: 0x9123683e }, // BTRFS_SUPER_MAGIC
  zfs: { name: "zfs", magic: 0x2fc12fc1 }, // ZFS_SUPER_MAGIC (OpenZFS)
} as const satisfies Record<string, FileSystem>;

/** A file system with an fsslower tool. */
export type FsName = keyof typeof FILESYSTEMS;

/** Whether the kernel has the file system registered (built in, or its module loaded). */
export function fsRegistered(name: string, procFilesystems?: string): boolean {
  const text = procFilesystems ?? Deno.readTextFileSync("/proc/filesystems");
  return text.split("\n").some((line) => line.split("\t").at(-1)?.trim() === name);
}

/** Throws the one-line error a tool prints when its file system is not in this kernel. */
export function requireFs(fs: FileSystem): void {
  if (!fsRegistered(fs.name)) {
    throw new FeatureMissingError(
      `${fs.name} is not available in this kernel (not in /proc/filesystems: ` +
        `is the ${fs.name} module loaded?)`,
    );
  }
}
