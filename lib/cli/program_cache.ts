/**
 * A cache of built and verified programs, so that a tool started again with
 * the same options on the same kernel loads what it built last time: no BTF
 * parsing, no program building, and not our verifier either when it already
 * accepted exactly these bytes.
 *
 * An entry is found by a hash of everything that decides the programs: the
 * tool (declared and invoked name), its parsed options, what the driver adds
 * (the event buffer kind), the `BPFTK_*` environment, the kernel (release,
 * version string, GNU build id from /sys/kernel/notes: vmlinux BTF is part of
 * the image it names), the size of vmlinux BTF, and the possible CPUs. Inside, the entry lists our code's version:
 * every source file of the module graph (from the main module, static and
 * literal dynamic imports) with its size, mtime, ctime and inode, all checked
 * before use, so editing any of them misses. A program holding a kernel
 * address (KASLR: a different one each boot) is kept for this boot only, and
 * tracepoint ids (given out at boot) are read again from tracefs. A program
 * holding our own PID (the fs-slower tools filter themselves out) is not
 * stored: a build must depend only on what the key holds.
 *
 * Where: `$XDG_CACHE_HOME/bpftk`, else `~/.cache/bpftk` (root: `/root/.cache/bpftk`
 * when HOME's is not root's). The directory must be a real directory owned by
 * us, mode 0700, in a parent only root or we can write (or a sticky one); an
 * entry must be a regular file owned by us, unreadable to others, whose first
 * line is the SHA-256 of the rest. Anything else is ignored, never trusted,
 * and a fresh build is used (and stored when the directory is sound). A
 * program's verdict is the SHA-256 of the bytes our verifier accepted: it is
 * checked again against the bytes loaded, and our verifier runs when it
 * differs. Uprobe programs (offsets into files that change without the
 * kernel changing) are never stored.
 *
 * Everything is read, verified and written before anything attaches, so a
 * tool never traces its own cache files. `BPFTK_NO_CACHE=1` bypasses the
 * cache; `-v` builds afresh (it prints our verifier's verdicts) and stores
 * nothing.
 *
 * @module
 */
import { decode, encode } from "../../bytecode/encode.ts";
import type { BuiltProgram } from "../dsl/builder.ts";
import type { MapDef } from "../dsl/maps.ts";
import type { BpfMap } from "../kernel/map.ts";
import { tracefsRoot } from "../tracefs/tracefs_root.ts";
import { loadPrograms, type OurVerdict, type Session } from "./load.ts";

/** Bumped when the entry format changes. */
const FORMAT = 1;
const utf8 = new TextEncoder();

/** What a driver asks for: a tool's programs for these options, loaded and attached. */
export interface StartRequest {
  /** The tool's declared name. */
  tool: string;
  /** The name it was invoked as (an alias), when different. */
  name?: string;
  /** The parsed options, which decide the programs. */
  options: unknown;
  /** Anything else the build depends on (the event buffer kind). */
  extra?: unknown;
  /** Builds the programs (not called on a cache hit). */
  build: () => BuiltProgram[];
  /** -v: our verifier's and the kernel's logs; builds afresh. */
  verbose?: boolean;
  /** Fills maps before anything attaches. */
  initMaps?: (maps: Map<MapDef, BpfMap>) => void;
}

/** Where the cache is, and what a start found in it (for tests). */
export interface CacheOptions {
  /** The cache directory (default: {@link defaultCacheDir}). */
  dir?: string;
  /** Source files that are our code's version (default: the main module's graph). */
  codeFiles?: () => string[];
  /** Told which programs our verifier checked, and whether they came from the cache. */
  report?: (r: { hit: boolean; verifiedNow: string[] }) => void;
}

/** Entries kept at most; the least recently written go first. */
const MAX_ENTRIES = 256;

/** Programs read back from the cache, and which of them our verifier accepted as they are. */
export interface CachedPrograms {
  programs: BuiltProgram[];
  /** Programs whose bytes hash to the verdict stored with them. */
  verified: Set<BuiltProgram>;
}

/**
 * Builds (or reads from the cache), verifies what needs it, loads and
 * attaches: the drivers' start path. Never fails because of the cache: a
 * cache that cannot be read or written is a fresh build.
 */
export async function startPrograms(req: StartRequest, cache: CacheOptions = {}): Promise<Session> {
  const enabled = Deno.env.get("BPFTK_NO_CACHE") !== "1";
  const identity = enabled ? cacheIdentity(req) : undefined;
  const dir = identity ? usableCacheDir(cache.dir) : undefined;
  let hit: CachedPrograms | undefined;
  if (identity && dir && !req.verbose) {
    hit = await readEntry(dir, identity);
  }
  const programs = hit?.programs ?? req.build();
  const verified = hit?.verified ?? new Set<BuiltProgram>();
  let ours: ((p: BuiltProgram, verbose: boolean) => OurVerdict) | undefined;
  if (programs.some((p) => !verified.has(p))) {
    ours = (await import("./session.ts")).verifyBeforeLoad;
  }
  const verifiedNow = programs.filter((p) => !verified.has(p)).map((p) => p.name);
  cache.report?.({ hit: hit !== undefined, verifiedNow });
  if (req.verbose) {
    // Ours just before each load, its verdicts between the kernel's logs; nothing stored.
    return loadPrograms(
      programs,
      req,
      (p, verbose) => verified.has(p) ? undefined : ours!(p, verbose),
    );
  }
  // Ours on every program first, and the entry written, before anything is
  // attached: a tool never sees its own cache files (opensnoop, statsnoop).
  const verdicts = new Map<BuiltProgram, OurVerdict>();
  for (const p of programs) if (!verified.has(p)) verdicts.set(p, ours!(p, false));
  if (!hit && identity && dir) {
    const accepted = new Set(programs.filter((p) => verdicts.get(p)?.ok));
    try {
      await writeEntry(dir, identity, programs, accepted, cache.codeFiles);
    } catch {
      // not stored: built afresh next time too
    }
  }
  return loadPrograms(programs, req, (p) => verdicts.get(p));
}

// --- identity ------------------------------------------------------------------------------

/**
 * Everything outside our code that decides a tool's programs, as one string,
 * or undefined when the options cannot be written down exactly (not cached).
 */
export function cacheIdentity(
  req: Pick<StartRequest, "tool" | "name" | "options" | "extra">,
  kernel: () => unknown = kernelIdentity,
): string | undefined {
  try {
    const env = Object.entries(Deno.env.toObject())
      .filter(([k]) => k.startsWith("BPFTK_") && k !== "BPFTK_NO_CACHE").sort();
    return stableJson({
      format: FORMAT,
      tool: req.tool,
      name: req.name ?? req.tool,
      options: req.options,
      extra: req.extra ?? null,
      env,
      kernel: kernel(),
    });
  } catch {
    return undefined;
  }
}

let kernelIdentityMemo: unknown;

/** The running kernel and its BTF: release, version string, build id, BTF size. */
export function kernelIdentity(): unknown {
  if (kernelIdentityMemo) return kernelIdentityMemo;
  kernelIdentityMemo = {
    release: Deno.osRelease(),
    version: readOr("/proc/sys/kernel/version"),
    // the kernel image's GNU build id; vmlinux BTF is part of that image
    notes: toHex(readBytesOr("/sys/kernel/notes")),
    btf: Deno.statSync("/sys/kernel/btf/vmlinux").size,
    cpus: readOr("/sys/devices/system/cpu/possible"),
  };
  return kernelIdentityMemo;
}

function readOr(path: string): string {
  try {
    return Deno.readTextFileSync(path).trim();
  } catch {
    return "";
  }
}

function readBytesOr(path: string): Uint8Array {
  try {
    return Deno.readFileSync(path);
  } catch {
    return new Uint8Array();
  }
}

/**
 * JSON with object keys sorted, so equal values give equal text. Bigints are
 * written tagged; functions, symbols, Maps, Sets and class instances other
 * than arrays and plain objects throw (such options are not cached).
 */
export function stableJson(value: unknown): string {
  if (value === null || typeof value === "boolean" || typeof value === "string") {
    return JSON.stringify(value);
  }
  if (typeof value === "number") {
    if (!Number.isFinite(value)) return JSON.stringify({ $number: String(value) });
    return Object.is(value, -0) ? '{"$number":"-0"}' : JSON.stringify(value);
  }
  if (typeof value === "bigint") return JSON.stringify({ $bigint: value.toString() });
  if (Array.isArray(value)) {
    return `[${value.map((v) => (v === undefined ? '{"$undefined":1}' : stableJson(v))).join()}]`;
  }
  if (typeof value === "object") {
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      throw new TypeError(`cannot key a ${proto?.constructor?.name ?? "object"}`);
    }
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join()}}`;
  }
  throw new TypeError(`cannot key a ${typeof value}`);
}

// --- the directory -------------------------------------------------------------------------

/** `$XDG_CACHE_HOME/bpftk`, else `$HOME/.cache/bpftk`, else (root) `/root/.cache/bpftk`. */
export function defaultCacheDir(): string[] {
  const xdg = Deno.env.get("XDG_CACHE_HOME");
  if (xdg && xdg.startsWith("/")) return [`${xdg}/bpftk`];
  const home = Deno.env.get("HOME");
  const dirs = home && home.startsWith("/") ? [`${home.replace(/\/+$/, "")}/.cache/bpftk`] : [];
  if (Deno.uid() === 0 && !dirs.includes("/root/.cache/bpftk")) dirs.push("/root/.cache/bpftk");
  return dirs;
}

/**
 * The cache directory when it is sound (made, mode 0700, when missing), or
 * undefined: owned by someone else, a symlink, open to others, or in a
 * parent others can write.
 */
export function usableCacheDir(dir?: string): string | undefined {
  for (const candidate of dir ? [dir] : defaultCacheDir()) {
    try {
      const parent = candidate.replace(/\/[^/]+\/?$/, "") || "/";
      try {
        Deno.statSync(parent);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
        Deno.mkdirSync(parent, { recursive: true, mode: 0o700 });
      }
      if (!safeParent(Deno.statSync(parent))) continue;
      let info: Deno.FileInfo;
      try {
        info = Deno.lstatSync(candidate);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
        Deno.mkdirSync(candidate, { mode: 0o700 });
        Deno.chmodSync(candidate, 0o700);
        info = Deno.lstatSync(candidate);
      }
      if (
        info.isDirectory && !info.isSymlink && ownedByUs(info) && (info.mode! & 0o777) === 0o700
      ) {
        return candidate;
      }
    } catch {
      // unusable: try the next, or no cache
    }
  }
  return undefined;
}

function ownedByUs(info: Deno.FileInfo): boolean {
  return info.uid === Deno.uid();
}

/** Owned by root or us; writable by others only with the sticky bit (like /tmp). */
function safeParent(info: Deno.FileInfo): boolean {
  if (!info.isDirectory || (info.uid !== 0 && info.uid !== Deno.uid())) return false;
  const mode = info.mode!;
  return (mode & 0o022) === 0 || (mode & 0o1000) !== 0;
}

// --- entries -------------------------------------------------------------------------------

interface StoredProgram {
  /** The program's fields other than instructions and maps (name, type, attach, ...). */
  fields: Record<string, unknown>;
  /** Instructions as bytes, map loads holding their placeholders, base64. */
  code: string;
  /** Names of the maps it declares, in order. */
  maps: string[];
  /** [logical index, map name] of each map load. */
  mapRefs: [number, string][];
  /** SHA-256 (hex) of `code` as our verifier accepted it; null when it did not. */
  verdict: string | null;
}

interface Entry {
  identity: string;
  /** Our code's version: [path, size, mtime ms, ctime ms, inode] of every source file. */
  code: [string, number, number, number, number][];
  /** The boot the entry is bound to (a kernel address inside), or null. */
  boot: string | null;
  maps: MapDef[];
  programs: StoredProgram[];
}

/** The file of the entry for `identity`. */
export function entryPath(dir: string, identity: string): string {
  return `${dir}/${nameHash(identity)}.json`;
}

/**
 * The programs stored for `identity`, or undefined when there are none or
 * anything about them is wrong (owner, mode, checksum, identity, our code,
 * boot, tracepoint ids).
 */
export async function readEntry(
  dir: string,
  identity: string,
): Promise<CachedPrograms | undefined> {
  try {
    const path = entryPath(dir, identity);
    const info = Deno.lstatSync(path);
    if (!info.isFile || info.isSymlink || !ownedByUs(info) || (info.mode! & 0o077) !== 0) {
      return undefined;
    }
    const text = Deno.readTextFileSync(path);
    const newline = text.indexOf("\n");
    const body = text.slice(newline + 1);
    if (newline !== 64) return undefined;
    // Parsed before its checksum is known (parsing is harmless), so that
    // the checksum and the verdicts' hashes are computed together.
    const entry = JSON.parse(body) as Entry;
    if (entry.identity !== identity) return undefined;
    if (entry.boot !== null && entry.boot !== bootId()) return undefined;
    if (!codeUnchanged(entry.code)) return undefined;
    const [sum, hit] = await Promise.all([sha256(utf8.encode(body)), programsOf(entry)]);
    return sum === text.slice(0, 64) ? hit : undefined;
  } catch {
    return undefined;
  }
}

function codeUnchanged(files: Entry["code"]): boolean {
  if (files.length === 0) return false;
  for (const [path, size, mtime, ctime, ino] of files) {
    const s = Deno.statSync(path);
    if (
      s.size !== size || s.mtime?.getTime() !== mtime || s.ctime?.getTime() !== ctime ||
      s.ino !== ino
    ) return false;
  }
  return true;
}

async function programsOf(entry: Entry): Promise<CachedPrograms> {
  const maps = new Map(entry.maps.map((m) => [m.name, Object.freeze({ ...m })]));
  const mapNamed = (name: string) => {
    const def = maps.get(name);
    if (!def) throw new Error(`no map ${name}`);
    return def;
  };
  const programs: BuiltProgram[] = [];
  const verified = new Set<BuiltProgram>();
  const verdicts: Promise<unknown>[] = [];
  for (const s of entry.programs) {
    const bytes = Uint8Array.fromBase64(s.code);
    const p = {
      ...s.fields,
      insns: decode(bytes),
      maps: s.maps.map(mapNamed),
      mapRefs: s.mapRefs.map(([index, name]) => ({ index, map: mapNamed(name) })),
    } as BuiltProgram;
    if (p.attach.kind === "tracepoint") {
      const a = p.attach;
      const id = Number(
        Deno.readTextFileSync(`${tracefsRoot()}/events/${a.category}/${a.name}/id`).trim(),
      );
      p.attach = { ...a, id };
    }
    programs.push(p);
    if (s.verdict !== null) {
      verdicts.push(sha256(bytes).then((sum) => sum === s.verdict && verified.add(p)));
    }
  }
  await Promise.all(verdicts);
  return { programs, verified };
}

/**
 * Stores `programs` for `identity` (atomically: a new file renamed into
 * place), with a verdict for each program our verifier accepted. Programs
 * that cannot be stored exactly (uprobes, fields that are not plain data)
 * are not.
 */
export async function writeEntry(
  dir: string,
  identity: string,
  programs: BuiltProgram[],
  accepted: Set<BuiltProgram>,
  codeFiles: () => string[] = moduleGraphFiles,
): Promise<void> {
  if (programs.some((p) => p.attach.kind === "uprobe")) return;
  const maps = new Map<string, MapDef>();
  const stored: StoredProgram[] = [];
  let boot = false;
  for (const p of programs) {
    for (const def of [...p.maps, ...p.mapRefs.map((r) => r.map)]) {
      const seen = maps.get(def.name);
      if (seen && stableJson({ ...seen }) !== stableJson({ ...def })) {
        throw new Error(`two maps named ${def.name}`);
      }
      maps.set(def.name, { ...def });
    }
    const { insns, maps: own, mapRefs, ...fields } = p;
    if (stableJson(JSON.parse(JSON.stringify(fields))) !== stableJson(fields)) {
      throw new Error(`${p.name}: fields that JSON cannot carry`);
    }
    if (insns.some((i) => i.imm === Deno.pid && i.code !== 0x18)) {
      throw new Error(`${p.name}: holds our own PID (a self filter)`);
    }
    const code = encode(insns);
    if (!sameInsns(decode(code), insns)) {
      throw new Error(`${p.name}: instructions do not round-trip`);
    }
    boot ||= holdsKernelAddress(code);
    stored.push({
      fields,
      code: code.toBase64(),
      maps: own.map((m) => m.name),
      mapRefs: mapRefs.map((r) => [r.index, r.map.name]),
      verdict: accepted.has(p) ? await sha256(code) : null,
    });
  }
  const entry: Entry = {
    identity,
    code: codeFiles().map((path) => {
      const s = Deno.statSync(path);
      return [path, s.size, s.mtime!.getTime(), s.ctime!.getTime(), s.ino!];
    }),
    boot: boot ? bootId() : null,
    maps: [...maps.values()],
    programs: stored,
  };
  const body = JSON.stringify(entry);
  const path = entryPath(dir, identity);
  const tmp = `${dir}/.${crypto.randomUUID()}.tmp`;
  try {
    Deno.writeTextFileSync(tmp, `${await sha256(utf8.encode(body))}\n${body}`, {
      createNew: true,
      mode: 0o600,
    });
    Deno.chmodSync(tmp, 0o600);
    Deno.renameSync(tmp, path);
  } catch (e) {
    try {
      Deno.removeSync(tmp);
    } catch { /* not made */ }
    throw e;
  }
  prune(dir);
}

/** Removes the least recently written entries beyond {@link MAX_ENTRIES}. */
function prune(dir: string): void {
  const entries: [string, number][] = [];
  for (const e of Deno.readDirSync(dir)) {
    if (!e.isFile || !/^[0-9a-f]{16,64}\.json$/.test(e.name)) continue;
    try {
      entries.push([e.name, Deno.statSync(`${dir}/${e.name}`).mtime?.getTime() ?? 0]);
    } catch { /* removed meanwhile */ }
  }
  if (entries.length <= MAX_ENTRIES) return;
  entries.sort((a, b) => a[1] - b[1]);
  for (const [name] of entries.slice(0, entries.length - MAX_ENTRIES)) {
    try {
      Deno.removeSync(`${dir}/${name}`);
    } catch { /* removed meanwhile */ }
  }
}

function sameInsns(a: BuiltProgram["insns"], b: BuiltProgram["insns"]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i], y = b[i];
    if (
      x.code !== y.code || x.dst !== y.dst || x.src !== y.src || x.off !== y.off ||
      x.imm !== y.imm || (x.imm2 ?? 0) !== (y.imm2 ?? 0)
    ) return false;
  }
  return true;
}

/** An `lddw` of a plain 64-bit constant in the kernel's half of the address space. */
function holdsKernelAddress(code: Uint8Array): boolean {
  const view = new DataView(code.buffer, code.byteOffset, code.byteLength);
  for (let at = 0; at + 16 <= code.length; at += 8) {
    if (code[at] !== 0x18) continue;
    if (code[at + 1] >> 4 === 0 && view.getUint32(at + 12, true) >= 0xffff8000) return true;
    at += 8;
  }
  return false;
}

function bootId(): string {
  return readOr("/proc/sys/kernel/random/boot_id");
}

/**
 * Our code's version: the source files reachable from the main module by
 * relative static imports and literal dynamic imports (a superset: imports
 * in comments count too), or the executable itself when compiled.
 */
export function moduleGraphFiles(): string[] {
  const main = Deno.mainModule;
  if (!main.startsWith("file:")) return [Deno.execPath()];
  const seen = new Set<string>();
  const todo = [new URL(main).pathname, new URL(import.meta.url).pathname];
  const spec = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)["'](\.{1,2}\/[^"']+)["']/g;
  while (todo.length) {
    const path = todo.pop()!;
    if (seen.has(path)) continue;
    let text: string;
    try {
      text = Deno.readTextFileSync(path);
    } catch {
      continue; // a name in a comment
    }
    seen.add(path);
    for (const m of text.matchAll(spec)) {
      todo.push(new URL(m[1], `file://${path}`).pathname);
    }
  }
  return [...seen].sort();
}

/** SHA-256 (hex) of `bytes`, by WebCrypto. */
export async function sha256(bytes: Uint8Array): Promise<string> {
  return toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as BufferSource)));
}

/**
 * A 64-bit hash (hex) naming an entry's file: not a check (the entry holds
 * its identity in full, compared on every read), just a spread of names.
 */
function nameHash(text: string): string {
  let a = 0x811c9dc5, b = 0x9747b28c ^ text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  return (a >>> 0).toString(16).padStart(8, "0") + (b >>> 0).toString(16).padStart(8, "0");
}

function toHex(bytes: Uint8Array): string {
  return bytes.toHex();
}
