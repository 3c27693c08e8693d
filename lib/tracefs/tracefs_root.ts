/**
 * Locating (and if need be mounting) tracefs, the file system that holds the
 * tracepoint `format` and `id` files.
 *
 * @module
 */
import { mountTracefs } from "../kernel/mount.ts";

/** Where tracefs normally lives, then where it appears under a mounted debugfs. */
export const TRACEFS_CANDIDATES: readonly string[] = [
  "/sys/kernel/tracing",
  "/sys/kernel/debug/tracing",
];

/** What {@link locateTracefs} needs from the system; injectable for tests. */
export interface TracefsSystem {
  /** Directories to try, in order of preference. */
  candidates: readonly string[];
  /** True when `dir/events` exists, i.e. tracefs is mounted at `dir`. */
  isMounted(dir: string): boolean;
  /** True when the directory itself exists (a mount point we could use). */
  dirExists(dir: string): boolean;
  /** True when we may mount file systems. */
  isRoot(): boolean;
  /** Mounts tracefs at `dir`; returns an error text on failure, undefined on success. */
  mount(dir: string): string | undefined;
  /** True when `dir` exists but we may not list it (tracefs is mode 0700: root only). */
  isUnreadable?(dir: string): boolean;
}

function isUnreadable(dir: string): boolean {
  try {
    Deno.readDirSync(dir)[Symbol.iterator]().next();
    return false;
  } catch (e) {
    return e instanceof Deno.errors.PermissionDenied;
  }
}

function dirExists(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

/** The real system: stat, uid, and mount(2) through lib/kernel. */
export const realTracefsSystem: TracefsSystem = {
  candidates: TRACEFS_CANDIDATES,
  isMounted: (dir) => dirExists(`${dir}/events`),
  dirExists,
  isRoot: () => Deno.uid() === 0,
  mount: mountTracefs,
  isUnreadable,
};

/**
 * Finds tracefs without caching: the first mounted candidate, else mounts
 * tracefs on the first existing candidate directory when we are root.
 * Throws a one-line Error when neither works.
 */
export function locateTracefs(sys: TracefsSystem = realTracefsSystem): string {
  for (const dir of sys.candidates) {
    if (sys.isMounted(dir)) return dir;
  }
  const mountPoint = sys.candidates.find((dir) => sys.dirExists(dir));
  if (mountPoint === undefined) {
    throw new Error(
      `tracefs not found: none of ${
        sys.candidates.join(", ")
      } exists (kernel without CONFIG_TRACING?)`,
    );
  }
  if (!sys.isRoot() && sys.isUnreadable?.(mountPoint)) {
    throw new Error(
      `tracefs at ${mountPoint} is readable by root only: tracepoint layouts need root (try sudo)`,
    );
  }
  if (!sys.isRoot()) {
    throw new Error(
      `tracefs is not mounted at ${mountPoint} and mounting it needs root ` +
        `(run as root, or: mount -t tracefs nodev ${mountPoint})`,
    );
  }
  const failure = sys.mount(mountPoint);
  if (failure !== undefined) {
    throw new Error(
      `tracefs is not mounted and 'mount -t tracefs nodev ${mountPoint}' failed: ${failure}`,
    );
  }
  if (!sys.isMounted(mountPoint)) {
    throw new Error(`mounted tracefs at ${mountPoint} but ${mountPoint}/events is still missing`);
  }
  return mountPoint;
}

let cachedRoot: string | undefined;

/**
 * The tracefs mount point, e.g. `/sys/kernel/tracing`. Mounts tracefs when it
 * is absent and we are root; the answer is cached for the process.
 *
 * @example
 * ```ts
 * import { tracefsRoot } from "./tracefs_root.ts";
 * const id = Deno.readTextFileSync(`${tracefsRoot()}/events/sched/sched_switch/id`);
 * ```
 */
export function tracefsRoot(): string {
  cachedRoot ??= locateTracefs();
  return cachedRoot;
}
