/**
 * A small ext4 file system on a loop device, for tests that need file system
 * work they can predict (workq, readahead). Made in a temp directory; remove
 * it with `cleanup()` in a `finally`.
 */
import { runOk } from "../support/process.ts";

/** A mounted loop file system. */
export interface LoopFs {
  /** Mount point. */
  mnt: string;
  /** The loop device ("/dev/loop3"). */
  device: string;
  /** st_dev of files on it, as tracepoints report s_dev (kernel encoding: major << 20 | minor). */
  kernelDev: number;
  /**
   * Unmounts and mounts again: evicts exactly this file system's page cache.
   * Returns the loop device now used.
   */
  remount(): Promise<string>;
  /** Unmounts (the loop device goes with it) and removes the image. */
  cleanup(): Promise<void>;
}

/** Runs a command (killed at its deadline); throws with its stderr when it fails. Returns stdout. */
export async function run(cmd: string, ...args: string[]): Promise<string> {
  return await runOk(cmd, args);
}

/** Makes and mounts an ext4 file system of `sizeMb` on a loop device. */
export async function makeLoopExt4(sizeMb: number): Promise<LoopFs> {
  const dir = await Deno.makeTempDir({ prefix: "bpftk_loopfs_" });
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
    await run("truncate", "-s", `${sizeMb}M`, image);
    await run("mkfs.ext4", "-q", "-F", image);
    await run("mount", "-o", "loop", image, mnt);
    mounted = true;
    const device = (await run("findmnt", "-n", "-o", "SOURCE", mnt)).trim();
    const remount = async () => {
      await run("umount", mnt);
      mounted = false;
      await run("mount", "-o", "loop", image, mnt);
      mounted = true;
      return (await run("findmnt", "-n", "-o", "SOURCE", mnt)).trim();
    };
    const st = Deno.statSync(mnt);
    // glibc's dev_t layout -> the kernel's (MKDEV: major << 20 | minor)
    const major = Math.floor(st.dev / 256) & 0xfff;
    const minor = (st.dev & 0xff) | (Math.floor(st.dev / 4096) & 0xfff00);
    return { mnt, device, kernelDev: (major << 20) | minor, remount, cleanup };
  } catch (e) {
    await cleanup();
    throw e;
  }
}
