/**
 * User-space symbols: a sampled address in a process -> the function it
 * belongs to, as bcc's sym(addr, pid) prints it.
 *
 * - /proc/PID/maps says which file (and which file offset) each address
 *   range maps; PIE executables and shared libraries are placed at their
 *   load bias (lib/symbols/elf.ts computes it from the mapping).
 * - The mapped file is opened through /proc/PID/map_files (the very inode the
 *   process maps, even if deleted or replaced since, or in another mount
 *   namespace), else /proc/PID/root/PATH, else PATH. Parsed files are cached
 *   by device and inode, so a library shared by a hundred processes is read
 *   once.
 * - A stripped file with a GNU build-id takes its symbols from the separate
 *   debug file /usr/lib/debug/.build-id/xx/yyyy.debug when one is installed.
 * - The vDSO ([vdso]) is named from the image the kernel maps into this process.
 * - JIT compilers that write /tmp/perf-PID.map (Node and Deno with
 *   --perf-basic-prof, the JVM with perf-map-agent) name their code there.
 * - C++ and Rust names are demangled (lib/symbols/demangle.ts), as bcc does.
 * - Nothing resolves: "[unknown]", as bcc, perf and flamegraph users expect.
 *
 * Symbolize before the process exits: its maps disappear with it.
 *
 * @example
 * ```ts
 * import { UserSymbolizer } from "./user.ts";
 * const syms = new UserSymbolizer();
 * syms.nameOf(1234, 0x55d0c8ec6c30n); // "readline"
 * syms.nameOf(1234, 0x7f0000001000n); // "JS:*spin file:///tmp/spin.js:1:27" (perf map)
 * syms.nameOf(1234, 0x10n); // "[unknown]"
 * ```
 *
 * @module
 */
import { demangle } from "./demangle.ts";
import { readOwnMemory } from "../kernel/process_memory.ts";
import { ElfFile } from "./elf.ts";

/** What bcc and perf print for an address nothing resolves. */
export const UNKNOWN = "[unknown]";

/** One line of /proc/PID/maps. */
export interface MapEntry {
  /** First address of the mapping. */
  start: number;
  /** First address past the mapping. */
  end: number;
  /** "r-xp" and the like. */
  perms: string;
  /** File offset of `start`. */
  offset: number;
  /** "fd:01" (major:minor, hex). */
  dev: string;
  /** The file's inode, 0 for anonymous memory. */
  inode: number;
  /** File path, a pseudo name ("[heap]", "[vdso]", "[anon:...]") or "" for anonymous memory. */
  path: string;
}

/** Parses /proc/PID/maps text ("start-end perms offset dev inode   path"). */
export function parseProcMaps(text: string): MapEntry[] {
  const out: MapEntry[] = [];
  for (const line of text.split("\n")) {
    const m = line.match(/^([0-9a-f]+)-([0-9a-f]+) (\S+) ([0-9a-f]+) (\S+) (\d+)\s*(.*)$/);
    if (!m) continue;
    out.push({
      start: parseInt(m[1], 16),
      end: parseInt(m[2], 16),
      perms: m[3],
      offset: parseInt(m[4], 16),
      dev: m[5],
      inode: Number(m[6]),
      path: m[7],
    });
  }
  return out;
}

/** A JIT's symbol file (/tmp/perf-PID.map): "START SIZE name" per line, hex. */
export class PerfMap {
  readonly #starts: Float64Array;
  readonly #ends: Float64Array;
  readonly #names: string[];

  private constructor(entries: { start: number; end: number; name: string; line: number }[]) {
    // Code can be moved and its range reused: when ranges overlap, the later line wins.
    entries.sort((a, b) => a.start - b.start || a.line - b.line);
    this.#starts = Float64Array.from(entries, (e) => e.start);
    this.#ends = Float64Array.from(entries, (e) => e.end);
    this.#names = entries.map((e) => e.name);
  }

  /** Parses perf map text; malformed lines are skipped. */
  static parse(text: string): PerfMap {
    const entries: { start: number; end: number; name: string; line: number }[] = [];
    let line = 0;
    for (const raw of text.split("\n")) {
      line++;
      const m = raw.match(/^(?:0x)?([0-9a-fA-F]+) (?:0x)?([0-9a-fA-F]+) (.+)$/);
      if (!m) continue;
      const start = parseInt(m[1], 16), size = parseInt(m[2], 16);
      entries.push({ start, end: start + size, name: m[3], line });
    }
    return new PerfMap(entries);
  }

  /** Number of entries. */
  get size(): number {
    return this.#names.length;
  }

  /** The name of the code containing `address`, if any. */
  resolve(address: number): string | undefined {
    let lo = 0, hi = this.#starts.length - 1, found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.#starts[mid] <= address) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    // The nearest start may be a small stub inside a bigger, earlier region.
    for (let i = found; i >= 0 && found - i < 64; i--) {
      if (address < this.#ends[i]) return this.#names[i];
    }
    return undefined;
  }
}

/** An address resolved in a process. */
export interface UserSymbol {
  /** Function name, demangled when it was a C++ or Rust symbol. */
  name: string;
  /** Bytes into the function (0 when unknown, as for JIT names). */
  offset: number;
  /** The file (or "perf-PID.map") the name came from. */
  module: string;
}

/** A parsed file's symbols, for one inode. */
export interface FileSymbols {
  /** The file as mapped. */
  elf: ElfFile;
  /** The separate debug file's symbols, when the file itself is stripped. */
  debug?: ElfFile;
}

/**
 * Parsed ELF files, shared by every process that maps them: keyed by device
 * and inode (and size and mtime, so a rewritten file is read again).
 */
export class FileSymbolCache {
  readonly #byInode = new Map<string, FileSymbols | null>();
  readonly #byBuildId = new Map<string, ElfFile | null>();
  /** Root of separate debug files, by build-id. */
  debugRoot = "/usr/lib/debug/.build-id";

  readonly #demangled = new Map<string, string>();

  /** C++ and Rust names demangled (as bcc prints them), each once. */
  demangled(name: string): string {
    let out = this.#demangled.get(name);
    if (out === undefined) this.#demangled.set(name, out = demangle(name));
    return out;
  }

  #vdso?: ElfFile | null;

  /**
   * The vDSO (the kernel's user-space helpers, e.g. __vdso_clock_gettime),
   * read from this process's own mapping: the image is the same in every
   * process of this kernel. Undefined where it cannot be read.
   */
  vdso(): ElfFile | undefined {
    if (this.#vdso !== undefined) return this.#vdso ?? undefined;
    this.#vdso = null;
    let temp: string | undefined;
    try {
      const own = parseProcMaps(Deno.readTextFileSync("/proc/self/maps"))
        .find((m) => m.path === "[vdso]");
      if (!own) return undefined;
      const image = readOwnMemory(own.start, own.end - own.start);
      // ElfFile reads from a path: give it the image as a file for a moment.
      temp = Deno.makeTempFileSync({ prefix: "bpftk-vdso-" });
      Deno.writeFileSync(temp, image);
      this.#vdso = ElfFile.read(temp);
    } catch {
      this.#vdso = null;
    } finally {
      if (temp) Deno.removeSync(temp);
    }
    return this.#vdso ?? undefined;
  }

  /** Number of files (inodes) parsed or found unusable so far. */
  get size(): number {
    return this.#byInode.size;
  }

  /** The symbols of the first of `paths` that can be opened, or undefined. */
  open(paths: string[]): FileSymbols | undefined {
    for (const path of paths) {
      let st: Deno.FileInfo;
      try {
        st = Deno.statSync(path);
      } catch {
        continue;
      }
      if (!st.isFile) return undefined;
      const key = `${st.dev}:${st.ino}:${st.size}:${st.mtime?.getTime() ?? 0}`;
      const hit = this.#byInode.get(key);
      if (hit !== undefined) return hit ?? undefined;
      let entry: FileSymbols | null = null;
      try {
        const elf = ElfFile.read(path);
        entry = { elf, debug: this.#debugFile(elf) };
      } catch {
        entry = null; // not ELF, unreadable: remembered so it is not tried again
      }
      this.#byInode.set(key, entry);
      return entry ?? undefined;
    }
    return undefined;
  }

  /** /usr/lib/debug/.build-id/ab/cdef....debug, for a file without .symtab. */
  #debugFile(elf: ElfFile): ElfFile | undefined {
    if (!elf.buildId || elf.buildId.length < 3) return undefined;
    if (elf.symbols.some((s) => s.table === "symtab")) return undefined;
    const hit = this.#byBuildId.get(elf.buildId);
    if (hit !== undefined) return hit ?? undefined;
    let debug: ElfFile | null = null;
    try {
      const path = `${this.debugRoot}/${elf.buildId.slice(0, 2)}/${elf.buildId.slice(2)}.debug`;
      const candidate = ElfFile.read(path);
      if (candidate.buildId === elf.buildId) debug = candidate;
    } catch {
      debug = null;
    }
    this.#byBuildId.set(elf.buildId, debug);
    return debug ?? undefined;
  }
}

/** One process's address space, read once, resolved lazily. */
export class ProcessSymbols {
  /** The mappings as read from /proc/PID/maps when this was made. */
  readonly maps: MapEntry[];
  /** Where /proc is ("/proc" unless a test says otherwise). */
  readonly procRoot: string;
  #perfMap?: PerfMap | null;
  readonly #files = new Map<MapEntry, { syms: FileSymbols; bias: number } | null>();

  /** Reads the maps now, unless `opts.maps` gives them; files are parsed on first use. */
  constructor(
    readonly pid: number,
    readonly files: FileSymbolCache,
    opts: { maps?: MapEntry[]; procRoot?: string } = {},
  ) {
    this.procRoot = opts.procRoot ?? "/proc";
    this.maps = opts.maps ?? this.#readMaps();
  }

  /** The symbol for `address`, or undefined when nothing resolves it. */
  resolve(address: number | bigint): UserSymbol | undefined {
    const addr = Number(address);
    const m = this.#mapping(addr);
    if (m && m.path === "[vdso]") {
      // The kernel maps the same vDSO image into every process: ours names it.
      const vdso = this.files.vdso();
      const sym = vdso?.resolve(addr, vdso.loadBias(m.start, 0));
      if (sym) return { name: sym.name, offset: sym.offset, module: "[vdso]" };
    }
    if (m && m.path.startsWith("/")) {
      const file = this.#file(m);
      if (file) {
        const sym = file.syms.elf.resolve(addr, file.bias) ??
          file.syms.debug?.resolve(addr, file.bias);
        if (sym) {
          return { name: this.files.demangled(sym.name), offset: sym.offset, module: m.path };
        }
      }
    }
    // JIT code lives in anonymous memory; a perf map may also cover other ranges.
    const jit = this.#jitMap()?.resolve(addr);
    if (jit !== undefined) return { name: jit, offset: 0, module: `perf-${this.pid}.map` };
    return undefined;
  }

  /** The name to print: the function name, or "[unknown]". */
  nameOf(address: number | bigint): string {
    return this.resolve(address)?.name ?? UNKNOWN;
  }

  #readMaps(): MapEntry[] {
    try {
      return parseProcMaps(Deno.readTextFileSync(`${this.procRoot}/${this.pid}/maps`));
    } catch {
      return []; // the process is gone
    }
  }

  #mapping(addr: number): MapEntry | undefined {
    const maps = this.maps;
    let lo = 0, hi = maps.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const m = maps[mid];
      if (addr < m.start) hi = mid - 1;
      else if (addr >= m.end) lo = mid + 1;
      else return m;
    }
    return undefined;
  }

  #file(m: MapEntry): { syms: FileSymbols; bias: number } | undefined {
    const hit = this.#files.get(m);
    if (hit !== undefined) return hit ?? undefined;
    const path = m.path.replace(/ \(deleted\)$/, "");
    const range = `${m.start.toString(16)}-${m.end.toString(16)}`;
    const syms = this.files.open([
      `${this.procRoot}/${this.pid}/map_files/${range}`,
      `${this.procRoot}/${this.pid}/root${path}`,
      path,
    ]);
    const entry = syms ? { syms, bias: syms.elf.loadBias(m.start, m.offset) } : null;
    this.#files.set(m, entry);
    return entry ?? undefined;
  }

  #jitMap(): PerfMap | undefined {
    if (this.#perfMap !== undefined) return this.#perfMap ?? undefined;
    this.#perfMap = null;
    // Inside a container the file is under the process's root, named by its namespace PID.
    const candidates = [`/tmp/perf-${this.pid}.map`];
    const nsPid = this.#namespacePid();
    if (nsPid !== undefined) {
      candidates.unshift(`${this.procRoot}/${this.pid}/root/tmp/perf-${nsPid}.map`);
    }
    for (const path of candidates) {
      try {
        this.#perfMap = PerfMap.parse(Deno.readTextFileSync(path));
        break;
      } catch {
        // try the next place
      }
    }
    return this.#perfMap ?? undefined;
  }

  /** The PID as the process's own namespace sees it (last NSpid field), if readable. */
  #namespacePid(): number | undefined {
    try {
      const status = Deno.readTextFileSync(`${this.procRoot}/${this.pid}/status`);
      const m = status.match(/^NSpid:\s+(.*)$/m);
      const last = m?.[1].trim().split(/\s+/).at(-1);
      return last ? Number(last) : undefined;
    } catch {
      return undefined;
    }
  }
}

/**
 * Symbols of every process a tool meets: one ProcessSymbols per PID (maps
 * read on first use), one parsed file per inode across all of them.
 */
export class UserSymbolizer {
  /** Parsed files, shared across all processes seen. */
  readonly files = new FileSymbolCache();
  readonly #processes = new Map<number, ProcessSymbols>();

  /** The address space of `pid` (read now if not yet seen). */
  process(pid: number): ProcessSymbols {
    let p = this.#processes.get(pid);
    if (!p) this.#processes.set(pid, p = new ProcessSymbols(pid, this.files));
    return p;
  }

  /** The symbol of `address` in process `pid`, or undefined. */
  resolve(pid: number, address: number | bigint): UserSymbol | undefined {
    return this.process(pid).resolve(address);
  }

  /** The name to print for `address` in `pid`: the function, or "[unknown]". */
  nameOf(pid: number, address: number | bigint): string {
    return this.process(pid).nameOf(address);
  }
}
