/**
 * Where a uprobe's file is, from the name an operator types (bcc's
 * `BPF.find_library` and `find_exe`, libbpf's `resolve_full_path`):
 *
 * - a path (contains "/"): the file itself;
 * - a library name, "c", "libc", "libc.so.6", "ssl": with a PID, the file
 *   that process maps under that name; otherwise the first match in the
 *   system library directories (`lib` + name + `.so`, then its versions,
 *   the highest first);
 * - else an executable on $PATH ("bash").
 *
 * Undefined when nothing matches.
 *
 * @example
 * ```ts
 * import { findBinary } from "./library_path.ts";
 * findBinary("c"); // "/lib/x86_64-linux-gnu/libc.so.6"
 * findBinary("bash"); // "/usr/bin/bash"
 * ```
 *
 * @module
 */

/** Where the dynamic loader looks for libraries (Debian multiarch, then Fedora/Arch layouts). */
export const LIBRARY_DIRS = [
  "/lib/x86_64-linux-gnu",
  "/usr/lib/x86_64-linux-gnu",
  "/lib/aarch64-linux-gnu",
  "/usr/lib/aarch64-linux-gnu",
  "/lib64",
  "/usr/lib64",
  "/lib",
  "/usr/lib",
];

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** File names a library name may have: "c" -> libc.so, libc.so.6...; "libc.so.6" as is. */
function nameMatches(name: string, file: string): boolean {
  if (file === name) return true;
  const base = name.startsWith("lib") ? name : `lib${name}`;
  if (/\.so(\.|$)/.test(base)) return file === base;
  return file === `${base}.so` || file.startsWith(`${base}.so.`);
}

/** Highest version first: libssl.so.3 before libssl.so.1.1, and the plain .so last. */
function byVersion(a: string, b: string): number {
  const va = a.split(".so")[1] ?? "", vb = b.split(".so")[1] ?? "";
  if (va === "" || vb === "") return va === "" ? 1 : -1;
  return vb.localeCompare(va, undefined, { numeric: true });
}

/** The file process `pid` maps whose name matches `name`, as /proc/PID/root sees it. */
function mappedBy(pid: number, name: string): string | undefined {
  let maps: string;
  try {
    maps = Deno.readTextFileSync(`/proc/${pid}/maps`);
  } catch {
    return undefined;
  }
  for (const line of maps.split("\n")) {
    const path = line.trim().split(/\s+/).slice(5).join(" ");
    if (!path.startsWith("/")) continue;
    if (nameMatches(name, path.split("/").pop()!)) return path;
  }
  return undefined;
}

/** The library called `name` in the system library directories. */
export function findLibrary(name: string): string | undefined {
  for (const dir of LIBRARY_DIRS) {
    let files: string[];
    try {
      files = [...Deno.readDirSync(dir)].map((e) => e.name);
    } catch {
      continue;
    }
    const found = files.filter((f) => nameMatches(name, f)).sort(byVersion);
    for (const f of found) if (isFile(`${dir}/${f}`)) return `${dir}/${f}`;
  }
  return undefined;
}

/** An executable called `name` on $PATH (and the sbin directories). */
export function findExecutable(name: string): string | undefined {
  const dirs = (Deno.env.get("PATH") ?? "").split(":").filter((d) => d !== "");
  for (const dir of [...dirs, "/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"]) {
    if (isFile(`${dir}/${name}`)) return `${dir}/${name}`;
  }
  return undefined;
}

/** The file a uprobe on `name` goes into (see the module doc); undefined when none. */
export function findBinary(name: string, pid?: number): string | undefined {
  if (name.includes("/")) return isFile(name) ? name : undefined;
  if (pid !== undefined) {
    const mapped = mappedBy(pid, name);
    if (mapped !== undefined) return mapped;
  }
  return findLibrary(name) ?? findExecutable(name);
}
