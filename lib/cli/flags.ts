/**
 * A tool's flags and positional arguments, each declared once: the names,
 * the value's name in the help, the help line, the parser that validates the
 * value (a UsageError naming what is wrong), and the default. Help text,
 * parsing and validation are all derived from these declarations
 * (lib/cli/tool.ts).
 *
 * @module
 */
import { type BlockDevice, diskByName } from "../symbols/disks.ts";
import { UsageError } from "./usage.ts";

/** One flag: a switch (no `value`) or an option taking a value. */
export interface FlagSpec<T = unknown> {
  /** One-letter form ("T" for -T). */
  short?: string;
  /** The long form when it is not the declaration's key ("print-uid"). */
  long?: string;
  /** The value's name in the help ("PID"); absent for a boolean switch. */
  value?: string;
  /** What the flag does, in a few words (one help line). */
  help: string;
  /** Checks and converts the value; throws a UsageError naming what is wrong. */
  parse?: (text: string, flag: string) => T;
  /** The value when the flag is absent. */
  default?: T;
}

/** A positional argument (interval, count, duration, PID...), always optional. */
export interface PositionalSpec<T = unknown> {
  /** Its name in the usage line and in errors. */
  name: string;
  /** What it means (one help line). */
  help: string;
  /** Checks and converts it; throws a UsageError. */
  parse: (text: string, name: string) => T;
  /** Takes every remaining argument (the value is then a list). */
  rest?: boolean;
}

/** A tool's flags, by key (the key is the long name unless `long` says otherwise). */
export type FlagTable = Record<string, FlagSpec<unknown>>;
/** A tool's positionals, in order. */
export type PositionalTable = Record<string, PositionalSpec<unknown>>;

/** The value type a flag declaration parses to (boolean for a switch). */
export type FlagValue<S> = S extends { value: string } ?
    | (S extends { parse: (t: string, f: string) => infer T } ? T : string)
    | (
      S extends { default: unknown } ? never : undefined
    )
  : boolean;

/** The parsed values of a flag table and a positional table, by key. */
export type Values<F extends FlagTable, P extends PositionalTable> =
  & { [K in keyof F]: FlagValue<F[K]> }
  & { [K in keyof P]: (P[K] extends PositionalSpec<infer T> ? T : never) | undefined };

/** A boolean switch. */
export function flag(help: string, short?: string, long?: string): FlagSpec<boolean> {
  return { help, short, long };
}

/** An option taking a value, undefined when absent. */
export type ValueFlag<T> = FlagSpec<T> & {
  value: string;
  parse: (text: string, flag: string) => T;
};

/** An option taking a value, with a default when absent. */
export type DefaultedFlag<T> = ValueFlag<T> & { default: T };

/** An option with a value, checked and converted by `parse`. */
export function option<T>(
  value: string,
  help: string,
  parse: (text: string, flag: string) => T,
  more: { short?: string; long?: string } = {},
): ValueFlag<T> {
  return { value, help, parse, ...more };
}

/** An option whose value is `fallback` when absent. */
export function optionWithDefault<T>(
  value: string,
  help: string,
  parse: (text: string, flag: string) => T,
  fallback: T,
  more: { short?: string; long?: string } = {},
): DefaultedFlag<T> {
  return { value, help, parse, default: fallback, ...more };
}

/** Any number of trailing arguments (FILE ...), each checked by `parse`. */
export function restPositionals<T>(
  name: string,
  help: string,
  parse: (text: string, name: string) => T,
): PositionalSpec<T[]> {
  return {
    name,
    help,
    parse: (text, n) => [parse(text, n)],
    rest: true,
  };
}

/** A positional argument. */
export function positional<T>(
  name: string,
  help: string,
  parse: (text: string, name: string) => T,
): PositionalSpec<T> {
  return { name, help, parse };
}

// --- value parsers ------------------------------------------------------------

/** An integer within [min, max], with a message that says what is wrong with it. */
export function integer(
  min: number,
  max: number,
  what?: string,
): (text: string, name: string) => number {
  return (text: string, name: string): number => {
    const label = what ?? name;
    const bad = (why: string) => new UsageError(`invalid ${label} '${text}': ${why}`);
    if (!/^[-+]?\d+$/.test(text)) throw bad(text === "" ? "empty" : "not an integer");
    const n = Number(text);
    if (n < min) throw bad(n < 0 ? `negative (at least ${min})` : `must be at least ${min}`);
    if (n > max || !Number.isSafeInteger(n)) throw bad(`too large (at most ${max})`);
    return n;
  };
}

/** The kernel's largest PID (PID_MAX_LIMIT on 64-bit). */
export const PID_MAX = 4194304;

const pidRange = integer(1, PID_MAX, "PID");

/**
 * A process ID. One that names no process now is accepted (it may be about
 * to start), with a warning once on stderr, since the filter may never match.
 */
export function pidValue(text: string, name: string): number {
  const pid = pidRange(text, name);
  warnUnlessExists(pid, "process", "PID");
  return pid;
}

/** A thread ID, as pidValue. */
export function tidValue(text: string, name: string): number {
  const tid = integer(1, PID_MAX, "TID")(text, name);
  warnUnlessExists(tid, "thread", "TID");
  return tid;
}

function warnUnlessExists(id: number, what: string, label: string): void {
  try {
    Deno.statSync(`/proc/${id}`);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      console.error(`warning: no ${what} with ${label} ${id} now: nothing may match`);
    }
  }
}

/** Seconds for an interval or a duration: any positive count (long waits are chunked). */
export const seconds: (text: string, name: string) => number = integer(1, 99_999_999);

/** A count of intervals. */
export const count: (text: string, name: string) => number = integer(
  1,
  Number.MAX_SAFE_INTEGER,
);

/** A non-empty string (a name filter, a path). */
export function nonEmpty(text: string, name: string): string {
  if (text === "") throw new UsageError(`invalid ${name}: empty`);
  return text;
}

/**
 * A cgroup v2 directory: it must exist, be a directory, and be a cgroup
 * (hold cgroup.procs). Bad paths are usage errors, found before anything is
 * loaded.
 */
export function cgroupPath(text: string, name: string): string {
  if (text === "") throw new UsageError(`invalid ${name}: empty cgroup path`);
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(text);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new UsageError(`${name} ${text}: no such cgroup directory`);
    }
    throw new UsageError(`${name} ${text}: ${osError(e)}`);
  }
  if (!info.isDirectory) throw new UsageError(`${name} ${text}: not a directory`);
  try {
    Deno.statSync(`${text}/cgroup.procs`);
  } catch {
    throw new UsageError(`${name} ${text}: not a cgroup v2 directory`);
  }
  return text;
}

/**
 * A whole disk that exists now ("vda", "loop0"): BPF filters compare its
 * gendisk number. A partition or an unknown name is a usage error.
 */
export function wholeDisk(text: string, name: string): BlockDevice {
  if (text === "") throw new UsageError(`invalid ${name}: empty disk name`);
  const disk = diskByName(text);
  if (!disk) throw new UsageError(`${name} ${text}: no such disk`);
  if (disk.isPartition) throw new UsageError(`${name} ${text}: a partition; give its whole disk`);
  return disk;
}

/**
 * The cgroup v2 root here: /sys/fs/cgroup, or /sys/fs/cgroup/unified on a
 * hybrid hierarchy (v1 controllers beside v2). For `-c` variants that must
 * build on any machine.
 */
export function cgroupV2Root(): string {
  try {
    Deno.statSync("/sys/fs/cgroup/unified/cgroup.procs");
    return "/sys/fs/cgroup/unified";
  } catch {
    return "/sys/fs/cgroup";
  }
}

/** A file that must exist and be readable (not a directory). */
export function readableFile(text: string, name: string): string {
  if (text === "") throw new UsageError(`invalid ${name}: empty path`);
  try {
    const info = Deno.statSync(text);
    if (info.isDirectory) throw new UsageError(`${name} ${text}: is a directory`);
    Deno.openSync(text, { read: true }).close();
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`${name} ${text}: ${osError(e)}`);
  }
  return text;
}

/** An OS error in words, without Deno's "(os error N)" suffix. */
export function osError(e: unknown): string {
  if (e instanceof Deno.errors.NotFound) return "no such file or directory";
  if (e instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (e instanceof Deno.errors.IsADirectory) return "is a directory";
  if (e instanceof Deno.errors.NotADirectory) return "not a directory";
  const message = e instanceof Error ? e.message : String(e);
  return message.replace(/\s*\(os error \d+\)/, "").replace(/: '.*'$/, "").toLowerCase();
}
