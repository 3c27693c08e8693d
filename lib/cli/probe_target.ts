/**
 * The probe targets of funclatency, funccount and stackcount, as bcc and
 * libbpf-tools spell them:
 *
 * | text | what |
 * |---|---|
 * | `FUNC` | kernel function (kprobe; fails where the kernel has none) |
 * | `LIB:FUNC`, `p:LIB:FUNC` | function FUNC in library or program LIB (`c`, `libc.so.6`, `/path/bin`) |
 * | `:FUNC` | function FUNC in the executable of -p PID |
 * | `t:CATEGORY:EVENT` | tracepoint |
 * | `u:LIB:PROBE`, `u:LIB:PROVIDER:PROBE` | USDT probe in LIB |
 *
 * FUNC, EVENT and PROBE may hold `*` and `?` wildcards where the tool says
 * so (funccount, stackcount); {@link expandUprobe} and {@link expandTracepoints}
 * list what they match. LIB is found by lib/symbols/library_path.ts; a name
 * nothing matches is a usage error, an existing file without the function
 * a ProbeTargetError (exit 1).
 *
 * @module
 */
import { ProbeTargetError } from "../dsl/pt_regs.ts";
import { ElfFile, ElfFormatError, type ElfSymbol, type UsdtProbe } from "../symbols/elf.ts";
import { findBinary } from "../symbols/library_path.ts";
import { UsageError } from "./usage.ts";

/** A parsed target (the library resolved to a file). */
export type ProbeTarget =
  | { kind: "kprobe"; func: string; text: string }
  | { kind: "uprobe"; binary: string; func: string; text: string }
  | { kind: "usdt"; binary: string; provider?: string; probe: string; text: string }
  | { kind: "tracepoint"; category: string; event: string; text: string };

/** Which kinds a tool accepts, and whether names may be patterns. */
export interface TargetRules {
  tracepoints?: boolean;
  usdt?: boolean;
  wildcards?: boolean;
  /** Names are regular expressions (bcc's -r), matched from their start. */
  regexp?: boolean;
}

const NAME = /^[A-Za-z0-9_.$@*?]+$/;

function checkName(name: string, what: string, text: string, rules: TargetRules): string {
  if (rules.regexp) {
    try {
      new RegExp(name);
    } catch {
      throw new UsageError(`invalid regular expression '${name}' in '${text}'`);
    }
    return name;
  }
  if (!NAME.test(name)) throw new UsageError(`invalid ${what} '${name}' in '${text}'`);
  if (!rules.wildcards && /[*?]/.test(name)) {
    throw new UsageError(`'${text}': this tool takes one ${what}, not a pattern`);
  }
  return name;
}

function binaryOf(lib: string, text: string, pid?: number): string {
  if (lib === "") {
    if (pid === undefined) throw new UsageError(`'${text}': ':FUNC' needs -p PID (its executable)`);
    return `/proc/${pid}/exe`;
  }
  const path = findBinary(lib, pid);
  if (path === undefined) throw new UsageError(`'${text}': can't find library or program '${lib}'`);
  return path;
}

/** Parses a target (see the module doc); `pid` is -p, where ":FUNC" and library names are looked up. */
export function parseTarget(text: string, rules: TargetRules = {}, pid?: number): ProbeTarget {
  if (text === "") throw new UsageError("empty probe target");
  const parts = text.split(":");
  if (parts.length === 1) {
    return { kind: "kprobe", func: checkName(text, "function", text, rules), text };
  }
  const [head, ...rest] = parts;
  if (head === "t" && rest.length === 2) {
    if (!rules.tracepoints) {
      throw new UsageError(`'${text}': tracepoints are not probed by this tool`);
    }
    return {
      kind: "tracepoint",
      category: checkName(rest[0], "category", text, rules),
      event: checkName(rest[1], "event", text, rules),
      text,
    };
  }
  if (head === "u" && (rest.length === 2 || rest.length === 3)) {
    if (!rules.usdt) throw new UsageError(`'${text}': USDT probes are not probed by this tool`);
    const binary = binaryOf(rest[0], text, pid);
    const probe = checkName(rest.at(-1)!, "probe", text, rules);
    const provider = rest.length === 3 ? checkName(rest[1], "provider", text, rules) : undefined;
    return { kind: "usdt", binary, probe, text, ...(provider ? { provider } : {}) };
  }
  const [lib, func] = head === "p" && rest.length === 2 ? rest : parts;
  if (parts.length > 3 || (parts.length === 3 && head !== "p") || func === undefined) {
    throw new UsageError(`invalid probe target '${text}'`);
  }
  if (head === "p" && lib === "" && parts.length === 3) {
    return { kind: "kprobe", func: checkName(func, "function", text, rules), text };
  }
  return {
    kind: "uprobe",
    binary: binaryOf(lib, text, pid),
    func: checkName(func, "function", text, rules),
    text,
  };
}

/** A name pattern: a glob (`*`, `?`), or with `regexp` a regular expression matched from the start. */
export function namePattern(pattern: string, regexp = false): RegExp {
  return regexp ? new RegExp(`^(?:${pattern})`) : globRegExp(pattern);
}

/** Whether `name` is a pattern rather than one name. */
export function isPattern(name: string, regexp = false): boolean {
  return regexp || /[*?]/.test(name);
}

/** A glob (`*`, `?`) as an anchored regular expression. */
export function globRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${body}$`);
}

function openElf(path: string): ElfFile {
  try {
    return ElfFile.open(path);
  } catch (e) {
    if (e instanceof ElfFormatError) throw new ProbeTargetError(e.message);
    throw e;
  }
}

/**
 * The functions of a uprobe target, each once by address (aliases such as
 * `__libc_malloc`/`malloc` share one probe, named by the shortest name),
 * sorted by name; a pattern matching more than `max` is an error naming
 * how many matched. None: a ProbeTargetError.
 */
export function expandUprobe(
  t: Extract<ProbeTarget, { kind: "uprobe" }>,
  max = 1000,
  regexp = false,
): ElfSymbol[] {
  const elf = openElf(t.binary);
  if (!isPattern(t.func, regexp)) {
    const s = elf.symbol(t.func);
    if (!s || !["FUNC", "IFUNC", "NOTYPE"].includes(s.type)) {
      throw new ProbeTargetError(`${t.binary} has no function '${t.func}'`);
    }
    return [s];
  }
  const re = namePattern(t.func, regexp);
  const byAddress = new Map<number, ElfSymbol>();
  for (const s of elf.symbols) {
    if (s.sectionIndex === 0 || (s.type !== "FUNC" && s.type !== "IFUNC") || s.value === 0) {
      continue;
    }
    if (!re.test(s.name)) continue;
    const seen = byAddress.get(s.value);
    if (!seen || s.name.length < seen.name.length) byAddress.set(s.value, s);
  }
  const found = [...byAddress.values()].sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0
  );
  if (found.length === 0) {
    throw new ProbeTargetError(`no functions in ${t.binary} match '${t.func}'`);
  }
  if (found.length > max) {
    throw new ProbeTargetError(
      `'${t.text}' matches ${found.length} functions, more than ${max}: narrow the pattern`,
    );
  }
  return found;
}

/** The tracepoints a (possibly wildcarded) `t:CATEGORY:EVENT` names, from tracefs. */
export function expandTracepoints(
  t: Extract<ProbeTarget, { kind: "tracepoint" }>,
  max = 1000,
  regexp = false,
  root = "/sys/kernel/tracing/events",
): { category: string; event: string }[] {
  const out: { category: string; event: string }[] = [];
  const cat = namePattern(t.category, regexp), ev = namePattern(t.event, regexp);
  let categories: string[];
  try {
    categories = [...Deno.readDirSync(root)].filter((e) => e.isDirectory).map((e) => e.name);
  } catch {
    categories = [];
  }
  for (const c of categories.filter((c) => cat.test(c)).sort()) {
    for (
      const e of [...Deno.readDirSync(`${root}/${c}`)].filter((e) => e.isDirectory).map((e) =>
        e.name
      ).sort()
    ) {
      if (ev.test(e)) out.push({ category: c, event: e });
    }
  }
  if (out.length === 0) throw new ProbeTargetError(`no tracepoints match '${t.text}'`);
  if (out.length > max) {
    throw new ProbeTargetError(`'${t.text}' matches ${out.length} tracepoints, more than ${max}`);
  }
  return out;
}

/** The USDT probes of a (possibly wildcarded) `u:LIB[:PROVIDER]:PROBE`, in note order. */
export function expandUsdt(
  t: Extract<ProbeTarget, { kind: "usdt" }>,
  max = 1000,
  regexp = false,
): UsdtProbe[] {
  const elf = openElf(t.binary);
  const name = namePattern(t.probe, regexp);
  const provider = t.provider === undefined ? undefined : namePattern(t.provider, regexp);
  const found = elf.usdtProbes.filter((p) =>
    name.test(p.name) && (provider === undefined || provider.test(p.provider))
  );
  if (found.length === 0) {
    throw new ProbeTargetError(`${t.binary} has no USDT probe matching '${t.text}'`);
  }
  if (found.length > max) {
    throw new ProbeTargetError(`'${t.text}' matches ${found.length} USDT probes, more than ${max}`);
  }
  return found;
}
