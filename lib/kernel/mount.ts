/**
 * mount(2) for the file systems the toolkit needs: tracefs, when nobody
 * mounted it (lib/tracefs asks for it).
 *
 * @module
 */
import { errnoName } from "./errors.ts";
import { cString } from "./ffi.ts";
import { lastErrno, libc } from "./libc.ts";

/**
 * Mounts tracefs at `dir` (as `mount -t tracefs nodev DIR`). Returns why it
 * failed ("EPERM", or why libc could not be loaded), undefined on success.
 */
export function mountTracefs(dir: string): string | undefined {
  try {
    const ret = libc().mount(cString("nodev"), cString(dir), cString("tracefs"), 0n, null);
    return ret === 0 ? undefined : errnoName(lastErrno());
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}
