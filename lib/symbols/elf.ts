/**
 * ELF64 (little-endian) files: section and program headers, .symtab and
 * .dynsym symbols, the GNU build-id, and SystemTap SDT (USDT) notes.
 *
 * What the tracing tools need from a binary:
 * - uprobes: a symbol's file offset (the uprobe PMU takes a file offset, so a
 *   virtual address goes through the PT_LOAD segment that maps it);
 * - symbolization: a sampled address in a process -> the function it belongs
 *   to, given where the file was loaded (the load bias from /proc/PID/maps);
 * - USDT: each probe's location, semaphore and argument spec from
 *   .note.stapsdt.
 *
 * Files are parsed once and cached by path, device, inode and mtime
 * (`ElfFile.open`), so a replaced binary is read again. Only the headers,
 * symbol tables, string tables and notes are read, never the whole file: a
 * 30 MB server binary costs what its symbol tables cost.
 *
 * Addresses and offsets are numbers: ELF64 user-space addresses are below
 * 2^47, well within a double's exact integers.
 *
 * @example
 * ```ts
 * import { ElfFile } from "./elf.ts";
 * const bash = ElfFile.open("/bin/bash");
 * bash.symbolFileOffset("readline"); // 0xc6c20: what attachUprobe wants
 * bash.buildId; // "93ac61ec..."
 * // A sampled address in a process where bash's first mapping starts at 0x55d0c8e00000:
 * const bias = bash.loadBias(0x55d0c8e00000, 0);
 * bash.resolve(0x55d0c8e00000 + 0xc6c30, bias); // { name: "readline", offset: 0x10, ... }
 * ```
 *
 * @module
 */

/** ELF constants used here (from the System V ABI / elf.h). */
export const ELF = {
  ET_EXEC: 2,
  ET_DYN: 3,
  PT_LOAD: 1,
  PT_NOTE: 4,
  SHT_SYMTAB: 2,
  SHT_NOTE: 7,
  SHT_DYNAMIC: 6,
  SHT_NOBITS: 8,
  SHT_DYNSYM: 11,
  SHN_UNDEF: 0,
  SHN_ABS: 0xfff1,
  PF_X: 1,
  PF_W: 2,
  PF_R: 4,
  NT_GNU_BUILD_ID: 3,
  NT_STAPSDT: 3,
  DT_NEEDED: 1,
  DT_SONAME: 14,
} as const;

/** A section header, with its name resolved. */
export interface ElfSection {
  /** Position in the section header table (what st_shndx refers to). */
  index: number;
  /** Name from the section header string table (".text", ".symtab"). */
  name: string;
  /** sh_type: SHT_PROGBITS, SHT_SYMTAB, SHT_NOTE... */
  type: number;
  /** sh_flags: SHF_ALLOC, SHF_EXECINSTR... bits. */
  flags: number;
  /** Virtual address when loaded (0 if not allocated). */
  addr: number;
  /** Offset of its bytes in the file. */
  offset: number;
  /** sh_size in bytes (a SHT_NOBITS section, like .bss, takes none of the file). */
  size: number;
  /** sh_link: a related section's index (a symbol table's string table). */
  link: number;
  /** sh_info: extra data, by section type. */
  info: number;
  /** Required alignment of `addr`. */
  addralign: number;
  /** Bytes per entry for tables (symbols), else 0. */
  entsize: number;
}

/** A program header (segment). */
export interface ElfSegment {
  /** p_type: PT_LOAD, PT_NOTE, PT_DYNAMIC... */
  type: number;
  /** PF_R | PF_W | PF_X bits. */
  flags: number;
  /** Offset of its bytes in the file. */
  offset: number;
  /** Virtual address when loaded. */
  vaddr: number;
  /** Physical address (unused for user programs; usually vaddr). */
  paddr: number;
  /** Bytes taken from the file. */
  filesz: number;
  /** Bytes in memory (more than filesz when zero-filled, as .bss). */
  memsz: number;
  /** Alignment in memory and in the file (vaddr = offset modulo align). */
  align: number;
}

/** The symbol types readelf shows, by STT_* value. */
export const SYMBOL_TYPES = [
  "NOTYPE",
  "OBJECT",
  "FUNC",
  "SECTION",
  "FILE",
  "COMMON",
  "TLS",
] as const;
/** The symbol bindings readelf shows, by STB_* value. */
export const SYMBOL_BINDS = ["LOCAL", "GLOBAL", "WEAK"] as const;
const STT_GNU_IFUNC = 10;
const STB_GNU_UNIQUE = 10;

/** A symbol type as readelf -s prints it ("FUNC", "OBJECT", ..., "IFUNC"). */
export type ElfSymbolType = (typeof SYMBOL_TYPES)[number] | "IFUNC" | `<${number}>`;
/** A symbol binding as readelf -s prints it. */
export type ElfSymbolBind = (typeof SYMBOL_BINDS)[number] | "UNIQUE" | `<${number}>`;

/** One entry of .symtab or .dynsym. */
export interface ElfSymbol {
  /** Name as stored, without a version suffix (.dynsym versions live in .gnu.version). */
  name: string;
  /** st_value: a virtual address for defined symbols in executables and shared objects. */
  value: number;
  /** st_size: bytes the function or object spans (0 when unknown). */
  size: number;
  /** What it names: function, object, section... */
  type: ElfSymbolType;
  /** Binding, how the linker resolves it: local, global, weak. */
  bind: ElfSymbolBind;
  /** st_shndx: the section it is defined in; 0 (SHN_UNDEF) for imports. */
  sectionIndex: number;
  /** Which table it came from. */
  table: "symtab" | "dynsym";
}

/** An address resolved to the function (or object) that contains it. */
export interface ResolvedElfSymbol {
  /** Symbol name, mangled as stored (see demangle). */
  name: string;
  /** The symbol's start, as a file virtual address. */
  value: number;
  /** The symbol's size in bytes. */
  size: number;
  /** Bytes from the symbol's start to the address. */
  offset: number;
}

/** How a USDT argument is found at the probe point (as the SDT argument spec says). */
export type UsdtArgLocation =
  | { kind: "const"; value: number }
  | { kind: "reg"; reg: string }
  | { kind: "mem"; reg: string; offset: number }
  | { kind: "rip"; offset: number; symbol?: string };

/** One USDT argument: "-4@%eax" is a signed 4-byte value in register eax. */
export interface UsdtArg {
  /** Size in bytes (1, 2, 4 or 8). */
  size: number;
  /** Whether the value is sign-extended (a negative size in the spec). */
  signed: boolean;
  /** Where the value is: a constant, a register, or memory (register- or RIP-relative). */
  location: UsdtArgLocation;
  /** The spec text this was parsed from. */
  spec: string;
}

/** One SystemTap SDT probe from .note.stapsdt. */
export interface UsdtProbe {
  /** Provider name, the first half of "provider:name". */
  provider: string;
  /** Probe name within the provider. */
  name: string;
  /** The probe's address (a file virtual address, adjusted for prelinking via .stapsdt.base). */
  address: number;
  /** Its file offset: what attachUprobe wants. */
  fileOffset: number;
  /** The semaphore's virtual address, 0 when the probe has none. */
  semaphore: number;
  /** The semaphore's file offset (the kernel's uprobe ref_ctr_offset), 0 when none. */
  semaphoreFileOffset: number;
  /** The argument spec as stored, e.g. "-4@%eax 8@-8(%rbp)". */
  argSpec: string;
  /** The arguments parsed from argSpec, in order. */
  args: UsdtArg[];
}

/** The file is not an ELF64 little-endian file, or is truncated. */
export class ElfFormatError extends Error {
  constructor(path: string, what: string) {
    super(`${path}: ${what}`);
    this.name = "ElfFormatError";
  }
}

/** Reads byte ranges of an open file. */
class RangeReader {
  constructor(readonly file: Deno.FsFile, readonly path: string, readonly fileSize: number) {}

  read(offset: number, length: number): Uint8Array {
    if (offset < 0 || length < 0 || offset + length > this.fileSize) {
      throw new ElfFormatError(this.path, `range 0x${offset.toString(16)}+${length} past EOF`);
    }
    const buf = new Uint8Array(length);
    this.file.seekSync(offset, Deno.SeekMode.Start);
    let done = 0;
    while (done < length) {
      const n = this.file.readSync(buf.subarray(done));
      if (n === null || n === 0) throw new ElfFormatError(this.path, "short read");
      done += n;
    }
    return buf;
  }
}

const decoder = new TextDecoder();

/** The NUL-terminated string at `offset` in a string table. */
function cString(table: Uint8Array, offset: number): string {
  if (offset >= table.length) return "";
  let end = offset;
  while (end < table.length && table[end] !== 0) end++;
  // Symbol names are almost always ASCII: skip the decoder for them.
  let ascii = true;
  for (let i = offset; i < end; i++) {
    if (table[i] >= 0x80) {
      ascii = false;
      break;
    }
  }
  const bytes = table.subarray(offset, end);
  return ascii
    ? String.fromCharCode.apply(null, bytes as unknown as number[])
    : decoder.decode(bytes);
}

/** A decimal or 0x-hex integer with an optional minus sign (Number() rejects "-0x10"). */
function intLiteral(text: string | undefined): number {
  if (!text) return 0;
  const negative = text.startsWith("-");
  const value = Number(negative ? text.slice(1) : text);
  return negative ? -value : value;
}

function u64(view: DataView, offset: number): number {
  return Number(view.getBigUint64(offset, true));
}

interface CacheEntry {
  dev: number;
  ino: number;
  mtime: number;
  size: number;
  elf: ElfFile;
}

const cache = new Map<string, CacheEntry>();

/** A parsed ELF64 file. Use `ElfFile.open(path)` (cached) or `ElfFile.read(path)`. */
export class ElfFile {
  /** e_type: ELF.ET_EXEC (fixed addresses) or ELF.ET_DYN (PIE or shared library). */
  readonly type: number;
  /** e_machine: the architecture (EM_X86_64 = 62). */
  readonly machine: number;
  /** e_entry: the entry point's virtual address (0 for most shared libraries). */
  readonly entry: number;
  /** Section headers, in file order. */
  readonly sections: ElfSection[];
  /** Program headers, in file order. */
  readonly segments: ElfSegment[];
  /** Every named symbol of .symtab, then .dynsym. */
  readonly symbols: ElfSymbol[];
  /** The GNU build-id as lower-case hex, if the file has one. */
  readonly buildId?: string;
  /** SystemTap SDT probes (USDT), in note order. */
  readonly usdtProbes: UsdtProbe[];
  /** Shared libraries it needs (DT_NEEDED), e.g. ["libtinfo.so.6", "libc.so.6"]. */
  readonly needed: string[] = [];
  /** Its own shared-object name (DT_SONAME), for libraries. */
  readonly soname?: string;
  /** The separate debug file's name from .gnu_debuglink, when it has one. */
  readonly debugLink?: string;

  #byName?: Map<string, ElfSymbol>;
  #sorted?: { starts: Float64Array; ends: Float64Array; symbols: ElfSymbol[] };

  private constructor(readonly path: string, r: RangeReader) {
    const ident = r.read(0, 64);
    if (ident[0] !== 0x7f || ident[1] !== 0x45 || ident[2] !== 0x4c || ident[3] !== 0x46) {
      throw new ElfFormatError(path, "not an ELF file");
    }
    if (ident[4] !== 2) throw new ElfFormatError(path, "not a 64-bit ELF file");
    if (ident[5] !== 1) throw new ElfFormatError(path, "not a little-endian ELF file");
    const h = new DataView(ident.buffer);
    this.type = h.getUint16(16, true);
    this.machine = h.getUint16(18, true);
    this.entry = u64(h, 24);
    const phoff = u64(h, 32), shoff = u64(h, 40);
    const phentsize = h.getUint16(54, true), phnum = h.getUint16(56, true);
    const shentsize = h.getUint16(58, true);
    let shnum = h.getUint16(60, true), shstrndx = h.getUint16(62, true);

    this.segments = [];
    if (phnum > 0) {
      const ph = new DataView(r.read(phoff, phentsize * phnum).buffer);
      for (let i = 0; i < phnum; i++) {
        const o = i * phentsize;
        this.segments.push({
          type: ph.getUint32(o, true),
          flags: ph.getUint32(o + 4, true),
          offset: u64(ph, o + 8),
          vaddr: u64(ph, o + 16),
          paddr: u64(ph, o + 24),
          filesz: u64(ph, o + 32),
          memsz: u64(ph, o + 40),
          align: u64(ph, o + 48),
        });
      }
    }

    this.sections = [];
    if (shoff !== 0) {
      // Many sections: the real count and string-table index live in section 0.
      if (shnum === 0 || shstrndx === 0xffff) {
        const s0 = new DataView(r.read(shoff, shentsize).buffer);
        if (shnum === 0) shnum = u64(s0, 32);
        if (shstrndx === 0xffff) shstrndx = s0.getUint32(40, true);
      }
      const sh = new DataView(r.read(shoff, shentsize * shnum).buffer);
      const raw: (Omit<ElfSection, "name"> & { nameOff: number })[] = [];
      for (let i = 0; i < shnum; i++) {
        const o = i * shentsize;
        raw.push({
          index: i,
          nameOff: sh.getUint32(o, true),
          type: sh.getUint32(o + 4, true),
          flags: u64(sh, o + 8),
          addr: u64(sh, o + 16),
          offset: u64(sh, o + 24),
          size: u64(sh, o + 32),
          link: sh.getUint32(o + 40, true),
          info: sh.getUint32(o + 44, true),
          addralign: u64(sh, o + 48),
          entsize: u64(sh, o + 56),
        });
      }
      const shstr = raw[shstrndx] ? r.read(raw[shstrndx].offset, raw[shstrndx].size) : undefined;
      for (const { nameOff, ...s } of raw) {
        this.sections.push({ ...s, name: shstr ? cString(shstr, nameOff) : "" });
      }
    }

    this.symbols = [
      ...this.#readSymbols(r, ELF.SHT_SYMTAB, "symtab"),
      ...this.#readSymbols(r, ELF.SHT_DYNSYM, "dynsym"),
    ];

    const notes = this.#readNotes(r);
    const buildId = notes.find((n) => n.owner === "GNU" && n.type === ELF.NT_GNU_BUILD_ID);
    if (buildId) {
      this.buildId = Array.from(buildId.desc, (b) => b.toString(16).padStart(2, "0")).join("");
    }
    this.usdtProbes = this.#parseUsdt(notes.filter((n) => n.owner === "stapsdt"));

    const dynamic = this.sections.find((s) => s.type === ELF.SHT_DYNAMIC);
    const dynstr = dynamic && this.sections[dynamic.link];
    if (dynamic && dynstr && dynstr.type !== ELF.SHT_NOBITS) {
      const strings = r.read(dynstr.offset, dynstr.size);
      const view = new DataView(r.read(dynamic.offset, dynamic.size).buffer);
      for (let o = 0; o + 16 <= view.byteLength; o += 16) {
        const tag = u64(view, o), value = u64(view, o + 8);
        if (tag === 0) break; // DT_NULL
        if (tag === ELF.DT_NEEDED) this.needed.push(cString(strings, value));
        if (tag === ELF.DT_SONAME) this.soname = cString(strings, value);
      }
    }
    const debuglink = this.section(".gnu_debuglink");
    if (debuglink && debuglink.type !== ELF.SHT_NOBITS && debuglink.size > 0) {
      this.debugLink = cString(r.read(debuglink.offset, debuglink.size), 0) || undefined;
    }
  }

  /**
   * The parsed file at `path`, from the cache when the file (device, inode,
   * mtime, size) has not changed since it was parsed.
   */
  static open(path: string): ElfFile {
    const st = Deno.statSync(path);
    const key = { dev: st.dev, ino: st.ino ?? 0, mtime: st.mtime?.getTime() ?? 0, size: st.size };
    const hit = cache.get(path);
    if (
      hit && hit.dev === key.dev && hit.ino === key.ino && hit.mtime === key.mtime &&
      hit.size === key.size
    ) {
      return hit.elf;
    }
    const elf = ElfFile.read(path);
    cache.set(path, { ...key, elf });
    return elf;
  }

  /** Parses the file at `path` (no cache). */
  static read(path: string): ElfFile {
    const file = Deno.openSync(path, { read: true });
    try {
      return new ElfFile(path, new RangeReader(file, path, file.statSync().size));
    } finally {
      file.close();
    }
  }

  /** Forgets every cached file (tests; long-running tools after many binaries). */
  static clearCache(): void {
    cache.clear();
  }

  /** The section called `name` (".text", ".note.stapsdt"...). */
  section(name: string): ElfSection | undefined {
    return this.sections.find((s) => s.name === name);
  }

  /** The loadable segments (PT_LOAD), in file order. */
  get loadSegments(): ElfSegment[] {
    return this.segments.filter((s) => s.type === ELF.PT_LOAD);
  }

  /**
   * The defined symbol called `name` (a function or object), preferring
   * .symtab (it has local functions too) and a sized symbol over an alias
   * without a size. Versioned names ("memcpy@GLIBC_2.14") match their base name.
   */
  symbol(name: string): ElfSymbol | undefined {
    if (!this.#byName) {
      const byName = new Map<string, ElfSymbol>();
      for (const s of this.symbols) {
        if (s.sectionIndex === ELF.SHN_UNDEF || s.type === "SECTION" || s.type === "FILE") continue;
        const seen = byName.get(s.name);
        if (!seen || (seen.size === 0 && s.size > 0)) byName.set(s.name, s);
      }
      this.#byName = byName;
    }
    return this.#byName.get(name) ?? this.#byName.get(name.replace(/@.*$/, ""));
  }

  /** The file offset that holds virtual address `vaddr` (through its PT_LOAD), if mapped. */
  vaddrToFileOffset(vaddr: number): number | undefined {
    for (const s of this.segments) {
      if (s.type !== ELF.PT_LOAD) continue;
      if (vaddr >= s.vaddr && vaddr < s.vaddr + s.filesz) return vaddr - s.vaddr + s.offset;
    }
    return undefined;
  }

  /** The virtual address a file offset is loaded at (through its PT_LOAD), if loaded. */
  fileOffsetToVaddr(offset: number): number | undefined {
    for (const s of this.segments) {
      if (s.type !== ELF.PT_LOAD) continue;
      if (offset >= s.offset && offset < s.offset + s.filesz) return offset - s.offset + s.vaddr;
    }
    return undefined;
  }

  /**
   * The file offset of a symbol (plus `offset` bytes into it): where a uprobe
   * on it attaches. Undefined when the file does not define it.
   */
  symbolFileOffset(name: string, offset = 0): number | undefined {
    const s = this.symbol(name);
    if (!s) return undefined;
    return this.vaddrToFileOffset(s.value + offset);
  }

  /**
   * The load bias of this file in a process: runtime address - file virtual
   * address. Give one mapping of it from /proc/PID/maps: its start address and
   * its file offset (the "offset" column). 0 for a non-PIE executable.
   */
  loadBias(mapStart: number, mapFileOffset: number): number {
    if (this.type === ELF.ET_EXEC) return 0;
    const vaddr = this.fileOffsetToVaddr(mapFileOffset);
    if (vaddr !== undefined) return mapStart - vaddr;
    // The mapping starts on a page before its segment's first byte (offsets are page-aligned).
    for (const s of this.segments) {
      if (s.type !== ELF.PT_LOAD) continue;
      const pageOff = s.offset - (s.offset % 4096);
      if (mapFileOffset === pageOff) return mapStart - (s.vaddr - (s.offset - pageOff));
    }
    return mapStart - mapFileOffset;
  }

  /**
   * The function or object containing `address` (a runtime address when
   * `loadBias` is given, else a file virtual address). Symbols of size 0 cover
   * up to the next symbol, within 4 KiB.
   */
  resolve(address: number | bigint, loadBias = 0): ResolvedElfSymbol | undefined {
    const vaddr = Number(address) - loadBias;
    const t = this.#sortedSymbols();
    // Last symbol starting at or before vaddr.
    let lo = 0, hi = t.starts.length - 1, found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (t.starts[mid] <= vaddr) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    // Nested or overlapping symbols: walk back while an earlier one still covers vaddr.
    for (let i = found, tries = 0; i >= 0 && tries < 16; i--, tries++) {
      if (vaddr < t.ends[i]) {
        const s = t.symbols[i];
        return { name: s.name, value: s.value, size: s.size, offset: vaddr - s.value };
      }
    }
    return undefined;
  }

  /**
   * Where a separate debug-info file for this one would be installed, first
   * existing candidate: /usr/lib/debug/.build-id/ab/cdef....debug (by
   * build-id), then the .gnu_debuglink name beside the file, in .debug/
   * beside it, and under /usr/lib/debug + its directory (gdb's search order).
   */
  debugFilePath(): string | undefined {
    const candidates: string[] = [];
    if (this.buildId && this.buildId.length > 2) {
      candidates.push(
        `/usr/lib/debug/.build-id/${this.buildId.slice(0, 2)}/${this.buildId.slice(2)}.debug`,
      );
    }
    if (this.debugLink) {
      const dir = this.path.replace(/\/[^/]*$/, "") || "/";
      candidates.push(
        `${dir}/${this.debugLink}`,
        `${dir}/.debug/${this.debugLink}`,
        `/usr/lib/debug${dir}/${this.debugLink}`,
      );
    }
    for (const c of candidates) {
      if (c === this.path) continue;
      try {
        if (Deno.statSync(c).isFile) return c;
      } catch { /* not there */ }
    }
    return undefined;
  }

  /** The USDT probes of `provider` called `name`. */
  usdt(provider: string, name: string): UsdtProbe[] {
    return this.usdtProbes.filter((p) => p.provider === provider && p.name === name);
  }

  #sortedSymbols() {
    if (this.#sorted) return this.#sorted;
    const candidates = new Map<number, ElfSymbol>();
    for (const s of this.symbols) {
      if (s.type !== "FUNC" && s.type !== "IFUNC" && s.type !== "OBJECT") continue;
      if (s.sectionIndex === ELF.SHN_UNDEF || s.value === 0) continue;
      const seen = candidates.get(s.value);
      // One symbol per address: prefer a sized one, then a global name over a local alias.
      if (
        !seen || (seen.size === 0 && s.size > 0) ||
        (seen.size === s.size && seen.bind === "LOCAL" && s.bind !== "LOCAL")
      ) {
        candidates.set(s.value, s);
      }
    }
    const symbols = [...candidates.values()].sort((a, b) => a.value - b.value);
    const starts = new Float64Array(symbols.length), ends = new Float64Array(symbols.length);
    for (let i = 0; i < symbols.length; i++) {
      const s = symbols[i];
      starts[i] = s.value;
      const next = i + 1 < symbols.length ? symbols[i + 1].value : Infinity;
      ends[i] = s.size > 0 ? s.value + s.size : Math.min(next, s.value + 4096);
    }
    this.#sorted = { starts, ends, symbols };
    return this.#sorted;
  }

  #readSymbols(r: RangeReader, type: number, table: ElfSymbol["table"]): ElfSymbol[] {
    const sec = this.sections.find((s) => s.type === type);
    if (!sec || sec.size === 0) return [];
    const strSec = this.sections[sec.link];
    if (!strSec || strSec.type === ELF.SHT_NOBITS) return [];
    const strtab = r.read(strSec.offset, strSec.size);
    const bytes = r.read(sec.offset, sec.size);
    const view = new DataView(bytes.buffer);
    const entsize = sec.entsize || 24;
    const out: ElfSymbol[] = [];
    for (let o = 0; o + entsize <= bytes.length; o += entsize) {
      const nameOff = view.getUint32(o, true);
      if (nameOff === 0) continue;
      const info = bytes[o + 4];
      const t = info & 0xf, b = info >> 4;
      out.push({
        name: cString(strtab, nameOff),
        value: u64(view, o + 8),
        size: u64(view, o + 16),
        type: t === STT_GNU_IFUNC ? "IFUNC" : SYMBOL_TYPES[t] ?? `<${t}>`,
        bind: b === STB_GNU_UNIQUE ? "UNIQUE" : SYMBOL_BINDS[b] ?? `<${b}>`,
        sectionIndex: view.getUint16(o + 6, true),
        table,
      });
    }
    return out;
  }

  /** Every note in SHT_NOTE sections (or PT_NOTE segments when there are no sections). */
  #readNotes(r: RangeReader): { owner: string; type: number; desc: Uint8Array }[] {
    const ranges: { offset: number; size: number; align: number }[] = this.sections.length
      ? this.sections.filter((s) => s.type === ELF.SHT_NOTE).map((s) => ({
        offset: s.offset,
        size: s.size,
        align: s.addralign,
      }))
      : this.segments.filter((s) => s.type === ELF.PT_NOTE).map((s) => ({
        offset: s.offset,
        size: s.filesz,
        align: s.align,
      }));
    const notes: { owner: string; type: number; desc: Uint8Array }[] = [];
    for (const range of ranges) {
      const bytes = r.read(range.offset, range.size);
      const view = new DataView(bytes.buffer);
      const align = range.align === 8 ? 8 : 4;
      const pad = (n: number) => (n + align - 1) & ~(align - 1);
      let o = 0;
      while (o + 12 <= bytes.length) {
        const namesz = view.getUint32(o, true), descsz = view.getUint32(o + 4, true);
        const type = view.getUint32(o + 8, true);
        const nameStart = o + 12, descStart = nameStart + pad(namesz);
        if (descStart + descsz > bytes.length) break;
        notes.push({
          owner: cString(bytes.subarray(nameStart, nameStart + namesz), 0),
          type,
          desc: bytes.slice(descStart, descStart + descsz),
        });
        o = descStart + pad(descsz);
      }
    }
    return notes;
  }

  /**
   * stapsdt notes (type 3): pc, base, semaphore (u64 each), then provider,
   * name and argument spec as NUL-terminated strings. When the file was
   * prelinked, .stapsdt.base moved by (its address - the recorded base) and
   * so did pc and the semaphore.
   */
  #parseUsdt(notes: { type: number; desc: Uint8Array }[]): UsdtProbe[] {
    const base = this.section(".stapsdt.base");
    const probes: UsdtProbe[] = [];
    for (const n of notes) {
      if (n.type !== ELF.NT_STAPSDT || n.desc.length < 24) continue;
      const view = new DataView(n.desc.buffer, n.desc.byteOffset, n.desc.byteLength);
      let pc = u64(view, 0);
      const recordedBase = u64(view, 8);
      let semaphore = u64(view, 16);
      if (base && recordedBase) {
        pc += base.addr - recordedBase;
        if (semaphore) semaphore += base.addr - recordedBase;
      }
      const strings = n.desc.subarray(24);
      const provider = cString(strings, 0);
      const name = cString(strings, provider.length + 1);
      const argSpec = cString(strings, provider.length + name.length + 2);
      probes.push({
        provider,
        name,
        address: pc,
        fileOffset: this.vaddrToFileOffset(pc) ?? pc,
        semaphore,
        semaphoreFileOffset: semaphore ? this.vaddrToFileOffset(semaphore) ?? 0 : 0,
        argSpec,
        args: parseUsdtArgs(argSpec),
      });
    }
    return probes;
  }
}

/**
 * Parses an x86-64 SDT argument spec: space-separated `[-]SIZE@OPERAND`,
 * where OPERAND is `%reg`, `$imm`, `disp(%reg)` or `sym+disp(%rip)`.
 * Unknown forms are kept with an empty register so the caller can refuse them.
 */
export function parseUsdtArgs(spec: string): UsdtArg[] {
  const args: UsdtArg[] = [];
  for (const part of spec.trim().split(/\s+/)) {
    if (!part) continue;
    const m = part.match(/^(-?)(\d+)@(.*)$/);
    const signed = m ? m[1] === "-" : false;
    const size = m ? Number(m[2]) : 8;
    const op = m ? m[3] : part;
    let location: UsdtArgLocation;
    let g: RegExpMatchArray | null;
    if ((g = op.match(/^\$(-?(?:0x[0-9a-fA-F]+|\d+))$/))) {
      location = { kind: "const", value: intLiteral(g[1]) };
    } else if ((g = op.match(/^%(\w+)$/))) {
      location = { kind: "reg", reg: g[1] };
    } else if (
      (g = op.match(/^(?:([A-Za-z_.$][\w.$]*)\+?)?(-?(?:0x[0-9a-fA-F]+|\d+))?\(%rip\)$/))
    ) {
      location = { kind: "rip", offset: intLiteral(g[2]), ...(g[1] ? { symbol: g[1] } : {}) };
    } else if ((g = op.match(/^(-?(?:0x[0-9a-fA-F]+|\d+))?\(%(\w+)\)$/))) {
      location = { kind: "mem", reg: g[2], offset: intLiteral(g[1]) };
    } else {
      location = { kind: "reg", reg: "" };
    }
    args.push({ size, signed, location, spec: part });
  }
  return args;
}
