/**
 * Mapping a file into memory read-only (lib/btf maps vmlinux BTF this way:
 * sysfs hands it out 4 KiB per read(2), while a mapping touches only the
 * pages used).
 *
 * @module
 */
import { cString } from "./ffi.ts";
import { libc, mmap } from "./libc.ts";

const O_RDONLY = 0;
const PROT_READ = 1;
const MAP_PRIVATE = 2;

/**
 * Maps a file read-only for the life of the process (never unmapped).
 * Returns undefined, never throws, when that is not possible: no FFI
 * permission, no libc, or a file that cannot be mapped (older kernels do not
 * support mmap of BTF files). Callers then read the file instead.
 */
export function mapFileReadOnly(path: string): Uint8Array | undefined {
  try {
    if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return undefined;
    const size = Deno.statSync(path).size;
    if (size === 0) return undefined;
    const fd = libc().open(cString(path), O_RDONLY);
    if (fd < 0) return undefined;
    try {
      const m = mmap(fd, size, PROT_READ, MAP_PRIVATE);
      return "errno" in m ? undefined : new Uint8Array(m.buffer);
    } finally {
      libc().close(fd);
    }
  } catch {
    return undefined;
  }
}
