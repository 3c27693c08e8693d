/**
 * Kernel symbols from /proc/kallsyms: address -> symbol (the function an
 * instruction or function pointer belongs to) and name -> address.
 *
 * The file is big (about 120,000 lines, 5 MB) and the kernel generates it on
 * every read, so it is read once, lazily, and parsed from bytes into typed
 * arrays: addresses as two u32 halves, names as byte ranges decoded only when
 * asked for. Reading costs the kernel about 25 ms, parsing about 15 ms; the
 * name index (for addressOf) is built on first use, about 40 ms more.
 *
 * When kernel.kptr_restrict hides addresses (every address reads as zero),
 * parsing throws a KallsymsHiddenError that says so, rather than resolving
 * everything to the first symbol.
 *
 * @example
 * ```ts
 * import { kernelSymbols } from "./kallsyms.ts";
 * const ksyms = kernelSymbols();
 * const addr = ksyms.addressOf("vmstat_update"); // 0xffffffff81234560n
 * ksyms.nameOf(addr! + 4n); // "vmstat_update"
 * ksyms.resolve(addr! + 4n); // { name: "vmstat_update", offset: 4, type: "t", ... }
 * ```
 *
 * @module
 */

/** One symbol as /proc/kallsyms lists it. */
export interface KernelSymbol {
  /** The symbol name, e.g. "vmstat_update". */
  name: string;
  /** Its address. */
  address: bigint;
  /** nm-style type letter: "T"/"t" text, "D"/"d" data, "R"/"r" read-only, "B"/"b" bss, "W" weak. */
  type: string;
  /** The module it belongs to ("[ext4]" without brackets), absent for the kernel image. */
  module?: string;
}

/** An address resolved to the symbol that contains it. */
export interface ResolvedSymbol extends KernelSymbol {
  /** Bytes from the symbol's start to the address. */
  offset: number;
}

/** /proc/kallsyms shows zeros for every address: kptr_restrict hides them from us. */
export class KallsymsHiddenError extends Error {
  /** `source` is the file read; `kptrRestrict` the sysctl value, when known. */
  constructor(source: string, kptrRestrict?: string) {
    const setting = kptrRestrict === undefined ? "" : ` (kernel.kptr_restrict=${kptrRestrict})`;
    super(
      `kernel symbol addresses are hidden: ${source} shows only zeros${setting}; ` +
        "they show to root (CAP_SYSLOG) when kernel.kptr_restrict is 0 or 1",
    );
    this.name = "KallsymsHiddenError";
  }
}

/** Symbol types whose range extends to the next symbol (functions). */
const TEXT_TYPES = new Set(["T", "t", "W", "w"]);

const HEX_VALUE = (() => {
  const table = new Int8Array(256).fill(-1);
  for (let i = 0; i < 10; i++) table[48 + i] = i;
  for (let i = 0; i < 6; i++) table[97 + i] = table[65 + i] = 10 + i;
  return table;
})();

const NEWLINE = 10, TAB = 9;
const U32 = 0x1_0000_0000n;

/** Parsed kallsyms: symbols sorted by address, searchable both ways. */
export class Kallsyms {
  /** Address halves and name byte ranges, in address order. */
  readonly #hi: Uint32Array;
  readonly #lo: Uint32Array;
  readonly #nameStart: Uint32Array;
  readonly #nameEnd: Uint32Array;
  readonly #types: Uint8Array;
  /** Module name per symbol index, for the few that have one. */
  readonly #modules: Map<number, string>;
  readonly #bytes: Uint8Array;
  #byName?: Map<string, number>;
  #text?: string;

  private constructor(parsed: Parsed) {
    this.#bytes = parsed.bytes;
    this.#modules = parsed.modules;
    const n = parsed.count;
    // The kernel image's symbols are listed in order; module and BPF ones may not be.
    if (!parsed.sorted) {
      const order = sortingOrder(parsed.hi, parsed.lo, n);
      const pick = <T extends Uint32Array | Uint8Array>(a: T, make: (n: number) => T): T => {
        const out = make(n);
        for (let i = 0; i < n; i++) out[i] = a[order[i]];
        return out;
      };
      this.#hi = pick(parsed.hi, (k) => new Uint32Array(k));
      this.#lo = pick(parsed.lo, (k) => new Uint32Array(k));
      this.#nameStart = pick(parsed.nameStart, (k) => new Uint32Array(k));
      this.#nameEnd = pick(parsed.nameEnd, (k) => new Uint32Array(k));
      this.#types = pick(parsed.types, (k) => new Uint8Array(k));
      const inverse = new Uint32Array(n);
      for (let i = 0; i < n; i++) inverse[order[i]] = i;
      this.#modules = new Map([...parsed.modules].map(([i, m]) => [inverse[i], m]));
    } else {
      this.#hi = parsed.hi.subarray(0, n);
      this.#lo = parsed.lo.subarray(0, n);
      this.#nameStart = parsed.nameStart.subarray(0, n);
      this.#nameEnd = parsed.nameEnd.subarray(0, n);
      this.#types = parsed.types.subarray(0, n);
    }
  }

  /**
   * Parses kallsyms text ("ffffffff81000000 T _stext", optionally followed by
   * a tab and "[module]"). Throws KallsymsHiddenError when every address is 0.
   *
   * @param source names the input in error messages
   * @param kptrRestrict the kernel.kptr_restrict setting, quoted in that error
   */
  static parse(bytes: Uint8Array, source = "kallsyms", kptrRestrict?: string): Kallsyms {
    const parsed = parseBytes(bytes);
    if (parsed.count > 0 && parsed.allZero) throw new KallsymsHiddenError(source, kptrRestrict);
    return new Kallsyms(parsed);
  }

  /** Number of symbols. */
  get size(): number {
    return this.#hi.length;
  }

  /**
   * The symbol containing `address`: the nearest symbol at or below it when
   * that is a function (text) symbol, otherwise only an exact match (a data
   * symbol's extent is unknown). Undefined when nothing matches.
   */
  resolve(address: bigint): ResolvedSymbol | undefined {
    if (address < 0n || address >= U32 * U32) return undefined;
    const hi = Number(address / U32), lo = Number(address % U32);
    const i = this.#lastAtOrBelow(hi, lo);
    if (i < 0) return undefined;
    const offset = (hi - this.#hi[i]) * 0x1_0000_0000 + (lo - this.#lo[i]);
    const sym = this.#symbol(i);
    if (offset !== 0 && !TEXT_TYPES.has(sym.type)) return undefined;
    return { ...sym, offset };
  }

  /**
   * The name to print for `address`, as bpftrace's ksym() does: the symbol
   * name, or the address in hex ("0xffffffffc0123456") when unknown. With
   * `showOffset`, a non-zero offset is appended ("vfs_read+0x1a").
   */
  nameOf(address: bigint, opts: { showOffset?: boolean } = {}): string {
    const sym = this.resolve(address);
    if (!sym) return `0x${address.toString(16)}`;
    return opts.showOffset && sym.offset ? `${sym.name}+0x${sym.offset.toString(16)}` : sym.name;
  }

  /**
   * The address of the symbol named `name` (the first listed, if several
   * share the name), optionally only in `module` ("" for the kernel image).
   * The first call indexes every name (a few tens of ms).
   */
  addressOf(name: string, module?: string): bigint | undefined {
    if (module !== undefined) {
      for (const sym of this.symbolsNamed(name)) {
        if ((sym.module ?? "") === module) return sym.address;
      }
      return undefined;
    }
    const i = this.#nameIndex().get(name);
    return i === undefined ? undefined : this.#address(i);
  }

  /** Every symbol named `name` (static functions may share a name), in address order. */
  symbolsNamed(name: string): KernelSymbol[] {
    const first = this.#nameIndex().get(name);
    if (first === undefined) return [];
    const wanted = new TextEncoder().encode(name);
    const out: KernelSymbol[] = [];
    for (let i = first; i < this.size; i++) {
      if (this.#nameIs(i, wanted)) out.push(this.#symbol(i));
    }
    return out;
  }

  /** Whether symbol i's name is exactly these bytes (no decoding). */
  #nameIs(i: number, wanted: Uint8Array): boolean {
    const start = this.#nameStart[i];
    if (this.#nameEnd[i] - start !== wanted.length) return false;
    for (let k = 0; k < wanted.length; k++) if (this.#bytes[start + k] !== wanted[k]) return false;
    return true;
  }

  /** Index of the last symbol whose address is <= (hi, lo), or -1. */
  #lastAtOrBelow(hi: number, lo: number): number {
    let low = 0, high = this.size - 1, found = -1;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      const h = this.#hi[mid];
      if (h < hi || (h === hi && this.#lo[mid] <= lo)) {
        found = mid;
        low = mid + 1;
      } else {
        high = mid - 1;
      }
    }
    if (found < 0) return -1;
    // Aliases share an address (_stext, _text): report the first one listed.
    while (
      found > 0 && this.#hi[found - 1] === this.#hi[found] &&
      this.#lo[found - 1] === this.#lo[found]
    ) found--;
    return found;
  }

  #address(i: number): bigint {
    return BigInt(this.#hi[i]) * U32 + BigInt(this.#lo[i]);
  }

  #name(i: number): string {
    // The whole file as one string (one fast decode), names as slices of it.
    this.#text ??= new TextDecoder("latin1").decode(this.#bytes);
    return this.#text.substring(this.#nameStart[i], this.#nameEnd[i]);
  }

  #symbol(i: number): KernelSymbol {
    const sym: KernelSymbol = {
      name: this.#name(i),
      address: this.#address(i),
      type: String.fromCharCode(this.#types[i]),
    };
    const module = this.#modules.get(i);
    if (module !== undefined) sym.module = module;
    return sym;
  }

  #nameIndex(): Map<string, number> {
    if (!this.#byName) {
      const index = new Map<string, number>();
      for (let i = 0; i < this.size; i++) {
        const name = this.#name(i);
        if (!index.has(name)) index.set(name, i);
      }
      this.#byName = index;
    }
    return this.#byName;
  }
}

/** Bytes [start, end) as a string; symbol names are ASCII. */
function latin1(bytes: Uint8Array, start: number, end: number): string {
  let s = "";
  for (let i = start; i < end; i++) s += String.fromCharCode(bytes[i]);
  return s;
}

interface Parsed {
  bytes: Uint8Array;
  count: number;
  hi: Uint32Array;
  lo: Uint32Array;
  nameStart: Uint32Array;
  nameEnd: Uint32Array;
  types: Uint8Array;
  modules: Map<number, string>;
  allZero: boolean;
  /** Whether the lines already are in address order (the kernel image's are). */
  sorted: boolean;
}

/** One pass over the bytes: "<hex> <type> <name>[\t[<module>]]\n" per line. */
function parseBytes(bytes: Uint8Array): Parsed {
  const n = bytes.length;
  // Lines are about 40 bytes; grow if a file of short lines needs more room.
  let cap = (n >> 4) + 16;
  let hi = new Uint32Array(cap), lo = new Uint32Array(cap);
  let nameStart = new Uint32Array(cap), nameEnd = new Uint32Array(cap);
  let types = new Uint8Array(cap);
  const modules = new Map<number, string>();
  let count = 0, pos = 0, allZero = true, sorted = true, prevHi = 0, prevLo = 0;
  while (pos < n) {
    let h = 0, l = 0, digit: number;
    const lineStart = pos;
    while ((digit = HEX_VALUE[bytes[pos]]) >= 0) {
      h = ((h << 4) | (l >>> 28)) >>> 0;
      l = ((l << 4) | digit) >>> 0;
      pos++;
    }
    const type = bytes[pos + 1];
    const start = pos + 3;
    // A well-formed line has hex digits, a space, a type letter, a space and a name.
    const wellFormed = pos > lineStart && bytes[pos] === 32 && bytes[pos + 2] === 32 &&
      start < n && bytes[start] !== NEWLINE;
    pos = wellFormed ? start : pos;
    while (pos < n && bytes[pos] !== NEWLINE && bytes[pos] !== TAB) pos++;
    const end = pos;
    while (pos < n && bytes[pos] !== NEWLINE) pos++;
    if (!wellFormed) {
      pos++;
      continue;
    }
    if (end < pos) modules.set(count, latin1(bytes, end + 1, pos).replace(/^\[(.*)\]$/, "$1"));
    pos++;
    if (count === cap) {
      cap *= 2;
      hi = grow(hi, cap);
      lo = grow(lo, cap);
      nameStart = grow(nameStart, cap);
      nameEnd = grow(nameEnd, cap);
      types = grow(types, cap);
    }
    hi[count] = h;
    lo[count] = l;
    nameStart[count] = start;
    nameEnd[count] = end;
    types[count] = type;
    if (h !== 0 || l !== 0) allZero = false;
    if (h < prevHi || (h === prevHi && l < prevLo)) sorted = false;
    prevHi = h;
    prevLo = l;
    count++;
  }
  return { bytes, count, hi, lo, nameStart, nameEnd, types, modules, allZero, sorted };
}

function grow<T extends Uint32Array | Uint8Array>(a: T, size: number): T {
  const out = new (a.constructor as new (n: number) => T)(size);
  out.set(a);
  return out;
}

/** The permutation that sorts symbols by address (stable: aliases keep their listed order). */
function sortingOrder(hi: Uint32Array, lo: Uint32Array, n: number): Uint32Array {
  const order = Array.from({ length: n }, (_, i) => i);
  order.sort((a, b) => hi[a] - hi[b] || lo[a] - lo[b] || a - b);
  return Uint32Array.from(order);
}

/** Reads and parses a kallsyms file (default /proc/kallsyms), now. */
export function loadKallsyms(path = "/proc/kallsyms"): Kallsyms {
  const bytes = Deno.readFileSync(path);
  let kptrRestrict: string | undefined;
  try {
    kptrRestrict = Deno.readTextFileSync("/proc/sys/kernel/kptr_restrict").trim();
  } catch {
    kptrRestrict = undefined;
  }
  return Kallsyms.parse(bytes, path, kptrRestrict);
}

let cached: Kallsyms | undefined;

/**
 * The running kernel's symbols, read from /proc/kallsyms on the first call
 * and kept for the life of the process (modules loaded later are not seen).
 * Throws KallsymsHiddenError when kptr_restrict hides the addresses.
 */
export function kernelSymbols(): Kallsyms {
  cached ??= loadKallsyms();
  return cached;
}
