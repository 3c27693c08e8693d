/**
 * A small xfs, ext4 or btrfs file system on a loop device, for the fsslower
 * tests: made in a temp directory, removed by `cleanup()` (call it in a
 * `finally`). mkfs.xfs comes from xfsprogs, mkfs.btrfs from btrfs-progs.
 */
import { runOk } from "../support/process.ts";

/** A mounted loop file system. */
export interface LoopFs {
  type: string;
  /** Mount point. */
  mnt: string;
  /** Unmounts (the loop device goes with it) and removes the image. */
  cleanup(): Promise<void>;
}

/** Runs a command (killed at its deadline); throws with its stderr when it fails. Returns stdout. */
export async function run(cmd: string, ...args: string[]): Promise<string> {
  return await runOk(cmd, args);
}

const MKFS: Record<string, string[]> = {
  xfs: ["mkfs.xfs", "-q", "-f"],
  ext4: ["mkfs.ext4", "-q", "-F"],
  btrfs: ["mkfs.btrfs", "-q", "-f"],
};

/** Makes and mounts a file system of `type` on a 300 MB sparse image (xfs's minimum). */
export async function makeLoopFs(type: "xfs" | "ext4" | "btrfs"): Promise<LoopFs> {
  const dir = await Deno.makeTempDir({ prefix: `bpftk_${type}_` });
  const image = `${dir}/fs.img`, mnt = `${dir}/mnt`;
  let mounted = false;
  const cleanup = async () => {
    if (mounted) {
      // The kernel may still hold it for a moment after the last writer exits.
      for (let i = 0; i < 20; i++) {
        try {
          await run("umount", mnt);
          mounted = false;
          break;
        } catch (e) {
          if (i === 19) throw e;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    }
    await Deno.remove(dir, { recursive: true });
  };
  try {
    await Deno.mkdir(mnt);
    await run("truncate", "-s", "300M", image);
    const [mkfs, ...flags] = MKFS[type];
    await run(mkfs, ...flags, image);
    await run("mount", "-o", "loop", image, mnt);
    mounted = true;
    return { type, mnt, cleanup };
  } catch (e) {
    await cleanup();
    throw e;
  }
}
