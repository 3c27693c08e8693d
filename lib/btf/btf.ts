/**
 * A lazy reader of BTF blobs such as `/sys/kernel/btf/vmlinux`.
 *
 * Opening vmlinux BTF (~5.5 MB, ~130k types) must cost only a few
 * milliseconds, so nothing is parsed up front. Type headers are walked on
 * demand, recording where each type starts, only as far as a look-up needs
 * (types used by tools tend to come early: `task_struct` is id ~100). A type
 * is decoded only when asked for; name and member look-ups compare bytes in
 * the string section instead of decoding strings.
 *
 * @module
 */

import { type FieldLayout, fieldLayout } from "./field_layout.ts";
import {
  BTF_EXTRA_FIXED,
  BTF_EXTRA_PER_VLEN,
  BTF_HEADER_SIZE,
  BTF_KIND_NAMES,
  BTF_MAGIC,
  BtfIntEncoding,
  BtfKind,
  type BtfKindName,
  type BtfMember,
  type BtfParam,
  type BtfType,
} from "./kinds.ts";
import { mapFileReadOnly, readWholeFile } from "./read_file.ts";

/** Size of a pointer on the 64-bit targets BPF runs on. */
const POINTER_SIZE = 8;
/** How many more type headers the index walks when a look-up reaches its end. */
const INDEX_CHUNK = 4096;

const utf8 = new TextDecoder();
const encoder = new TextEncoder();

function swapWords(bytes: Uint8Array): Uint32Array {
  const words = new Uint32Array(bytes.length >>> 2);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < words.length; i++) words[i] = view.getUint32(i * 4, false);
  return words;
}

/** Types of one kind whose names share a prefix, as far as findIdByPrefix has walked. */
interface PrefixFamily {
  /** Kind number. */
  kind: number;
  prefix: Uint8Array;
  /** Ids of the members among types 1..walkedTo, in id order. */
  ids: number[];
  walkedTo: number;
}

/** Parsed BTF: a lazily built index over the type section plus on-demand decoding. */
export class Btf {
  /** The type section as 32-bit words in host order (BTF types are word-sized records). */
  readonly #words: Uint32Array;
  /** The string section. */
  readonly #strings: Uint8Array;
  /**
   * `#typeStart[id]` is the word index of type `id`'s header, for ids
   * 1..#indexed. Sized for the worst case (3 words per type) up front; the
   * zeroed pages cost nothing until written.
   */
  readonly #typeStart: Uint32Array;
  /** Ids 1..#indexed are in #typeStart. */
  #indexed = 0;
  /** Word index of the header of type #indexed + 1. */
  #nextWord = 0;
  readonly #idCache = new Map<string, number | undefined>();
  /** findIdByPrefix's records, by "KIND:prefix". */
  readonly #families = new Map<string, PrefixFamily>();
  readonly #typeCache = new Map<number, BtfType>();

  private constructor(words: Uint32Array, strings: Uint8Array) {
    this.#words = words;
    this.#strings = strings;
    this.#typeStart = new Uint32Array(((words.length / 3) | 0) + 2);
  }

  /**
   * Parses a BTF blob (the raw format of `/sys/kernel/btf/*`, or a `.BTF`
   * section). Only the header is checked here; types are indexed and decoded
   * on demand, so a corrupt type is reported when a look-up reaches it.
   */
  static fromBytes(bytes: Uint8Array): Btf {
    if (bytes.length < BTF_HEADER_SIZE) {
      throw new Error(`BTF: blob too short (${bytes.length} bytes)`);
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let le: boolean;
    if (view.getUint16(0, true) === BTF_MAGIC) le = true;
    else if (view.getUint16(0, false) === BTF_MAGIC) le = false;
    else throw new Error(`BTF: bad magic 0x${view.getUint16(0, true).toString(16)}`);
    const hdrLen = view.getUint32(4, le);
    const typeOff = view.getUint32(8, le);
    const typeLen = view.getUint32(12, le);
    const strOff = view.getUint32(16, le);
    const strLen = view.getUint32(20, le);
    const typeStartByte = hdrLen + typeOff;
    const strStartByte = hdrLen + strOff;
    if (
      hdrLen < BTF_HEADER_SIZE || typeLen % 4 !== 0 || typeStartByte + typeLen > bytes.length ||
      strStartByte + strLen > bytes.length
    ) {
      throw new Error("BTF: header describes sections outside the blob");
    }
    const typeBytes = bytes.subarray(typeStartByte, typeStartByte + typeLen);
    let words: Uint32Array;
    const hostLe = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
    if (le !== hostLe) words = swapWords(typeBytes);
    else if (typeBytes.byteOffset % 4 === 0) {
      words = new Uint32Array(typeBytes.buffer, typeBytes.byteOffset, typeLen >>> 2);
    } else words = new Uint32Array(typeBytes.slice().buffer);
    return new Btf(words, bytes.subarray(strStartByte, strStartByte + strLen));
  }

  /**
   * Walks type headers until type `id` is indexed or the type section ends.
   * Returns the number of indexed types.
   */
  #indexUpTo(id: number): number {
    const words = this.#words;
    const typeStart = this.#typeStart;
    const fixedWords = BTF_EXTRA_FIXED;
    const wordsPerVlen = BTF_EXTRA_PER_VLEN;
    const limit = words.length - 2;
    let count = this.#indexed;
    let p = this.#nextWord;
    while (count < id && p < limit) {
      const info = words[p + 1];
      const kind = (info >>> 24) & 0x1f;
      const fixed = fixedWords[kind];
      if (fixed < 0) throw new Error(`BTF: type ${count + 1} has unknown kind ${kind}`);
      typeStart[++count] = p;
      p += 3 + fixed + wordsPerVlen[kind] * (info & 0xffff);
    }
    if (p > words.length) throw new Error(`BTF: type ${count} runs past the type section`);
    if (count < id && p < words.length) {
      throw new Error(`BTF: truncated type header after type ${count}`);
    }
    this.#indexed = count;
    this.#nextWord = p;
    return count;
  }

  static readonly #vmlinuxCache = new Map<string, Btf>();

  /**
   * The running kernel's BTF (cached per path). The file is mapped read-only
   * when FFI is permitted and the kernel allows it (~1.3 ms, pages touched
   * only as used), otherwise read (~3.5 ms for 5.5 MB from sysfs).
   *
   * @example
   * ```ts
   * import { Btf } from "./btf.ts";
   * const pidOffset = Btf.vmlinux().field("task_struct", "pid").offset;
   * ```
   */
  static vmlinux(path = "/sys/kernel/btf/vmlinux"): Btf {
    let btf = Btf.#vmlinuxCache.get(path);
    if (!btf) {
      let bytes: Uint8Array;
      try {
        bytes = mapFileReadOnly(path) ?? readWholeFile(path);
      } catch (e) {
        const why = e instanceof Deno.errors.NotFound
          ? "kernel built without CONFIG_DEBUG_INFO_BTF?"
          : e instanceof Error
          ? e.message
          : String(e);
        throw new Error(`BTF: cannot read ${path} (${why})`);
      }
      btf = Btf.fromBytes(bytes);
      Btf.#vmlinuxCache.set(path, btf);
    }
    return btf;
  }

  /** Number of types, not counting void; valid ids are 0..typeCount. */
  get typeCount(): number {
    return this.#indexUpTo(Number.MAX_SAFE_INTEGER);
  }

  // ---- strings ----

  /** The NUL-terminated string at `offset` in the string section. */
  stringAt(offset: number): string {
    const s = this.#strings;
    if (offset >= s.length) throw new Error(`BTF: string offset ${offset} out of range`);
    // Names are short ASCII: building them by char codes beats a TextDecoder call.
    let text = "";
    for (let i = offset; i < s.length; i++) {
      const c = s[i];
      if (c === 0) return text;
      if (c >= 0x80) {
        let end = i;
        while (end < s.length && s[end] !== 0) end++;
        return utf8.decode(s.subarray(offset, end));
      }
      text += String.fromCharCode(c);
    }
    return text;
  }

  /** Whether the string at `offset` equals `needle` (ASCII/UTF-8 bytes). */
  #nameEquals(offset: number, needle: Uint8Array): boolean {
    const s = this.#strings;
    if (offset + needle.length >= s.length) return false;
    for (let i = 0; i < needle.length; i++) if (s[offset + i] !== needle[i]) return false;
    return s[offset + needle.length] === 0;
  }

  // ---- raw header access ----

  #start(id: number): number {
    if (id <= this.#indexed && id >= 1) return this.#typeStart[id];
    if (!Number.isInteger(id) || id < 1 || this.#indexUpTo(id) < id) {
      throw new Error(`BTF: type id ${id} out of range (1..${this.typeCount})`);
    }
    return this.#typeStart[id];
  }

  /** Kind number of a type (0 for void). */
  #kindOf(id: number): number {
    return id === 0 ? 0 : (this.#words[this.#start(id) + 1] >>> 24) & 0x1f;
  }

  /** Kind name of a type; `VOID` for id 0. */
  kindOf(id: number): BtfKindName {
    return id === 0 ? "VOID" : BTF_KIND_NAMES[this.#kindOf(id)]!;
  }

  /** Name of a type ("" when anonymous, "void" for id 0). */
  nameOf(id: number): string {
    if (id === 0) return "void";
    const nameOff = this.#words[this.#start(id)];
    return nameOff === 0 ? "" : this.stringAt(nameOff);
  }

  /** The `size_type` word: size for sized kinds, referenced type id for the others. */
  #sizeOrType(id: number): number {
    return this.#words[this.#start(id) + 2];
  }

  // ---- look-ups ----

  /**
   * Id of the first type named `name`, optionally of one kind. Without a kind
   * a forward declaration is returned only when nothing else has the name.
   *
   * @example
   * ```ts
   * import { Btf } from "./btf.ts";
   * const id = Btf.vmlinux().findId("task_struct", "STRUCT");
   * ```
   */
  findId(name: string, kind?: BtfKindName): number | undefined {
    if (name === "void" && (kind === undefined || kind === "VOID")) return 0;
    const key = kind === undefined ? name : `${kind}:${name}`;
    if (this.#idCache.has(key)) return this.#idCache.get(key);
    const needle = encoder.encode(name);
    const wantKind = kind === undefined ? -1 : BtfKind[kind as keyof typeof BtfKind] ?? -2;
    const length = needle.length;
    const words = this.#words;
    const strings = this.#strings;
    const typeStart = this.#typeStart;
    let found: number | undefined;
    let fwd: number | undefined;
    let indexed = this.#indexed;
    for (let id = 1;; id++) {
      if (id > indexed && (indexed = this.#indexUpTo(id + INDEX_CHUNK)) < id) break;
      const p = typeStart[id];
      const nameOff = words[p];
      // Inline byte comparison: this loop may visit every type of vmlinux.
      if (nameOff === 0 || strings[nameOff + length] !== 0) continue;
      let i = 0;
      while (i < length && strings[nameOff + i] === needle[i]) i++;
      if (i < length) continue;
      const k = (words[p + 1] >>> 24) & 0x1f;
      if (wantKind >= 0) {
        if (k === wantKind) {
          found = id;
          break;
        }
      } else if (k === BtfKind.FWD) fwd ??= id;
      else {
        found = id;
        break;
      }
    }
    found ??= fwd;
    this.#idCache.set(key, found);
    return found;
  }

  /**
   * The same answer as `findId(name, kind)`, cheaper when many names sharing
   * `prefix` are looked up (tracepoint typedefs `btf_trace_*`, functions
   * `__traceiter_*`): the first look-up of a family walks the types only as
   * far as its name, recording every type of `kind` whose name starts with
   * `prefix` on the way; later look-ups check those records first and
   * resume the walk where it stopped. So the names of several tracepoints
   * cost one walk, not one each.
   */
  findIdByPrefix(
    name: string,
    kind: Exclude<BtfKindName, "VOID">,
    prefix: string,
  ): number | undefined {
    if (!name.startsWith(prefix)) return this.findId(name, kind);
    const key = `${kind}:${name}`;
    if (this.#idCache.has(key)) return this.#idCache.get(key);
    const familyKey = `${kind}:${prefix}`;
    let family = this.#families.get(familyKey);
    if (!family) {
      family = { kind: BtfKind[kind], prefix: encoder.encode(prefix), ids: [], walkedTo: 0 };
      this.#families.set(familyKey, family);
    }
    const needle = encoder.encode(name);
    const words = this.#words;
    const typeStart = this.#typeStart;
    let found = family.ids.find((id) => this.#nameEquals(words[typeStart[id]], needle));
    found ??= this.#walkFamily(family, needle);
    this.#idCache.set(key, found);
    return found;
  }

  /**
   * Walks on from where `family` stopped, recording its members, until one is
   * named `needle` (returns its id) or the types end.
   */
  #walkFamily(family: PrefixFamily, needle: Uint8Array): number | undefined {
    const words = this.#words;
    const strings = this.#strings;
    const typeStart = this.#typeStart;
    const { kind, prefix, ids } = family;
    const prefixLength = prefix.length;
    let indexed = this.#indexed;
    for (let id = family.walkedTo + 1;; id++) {
      if (id > indexed && (indexed = this.#indexUpTo(id + INDEX_CHUNK)) < id) {
        family.walkedTo = id - 1;
        return undefined;
      }
      const p = typeStart[id];
      if (((words[p + 1] >>> 24) & 0x1f) !== kind) continue;
      const nameOff = words[p];
      let i = 0;
      while (i < prefixLength && strings[nameOff + i] === prefix[i]) i++;
      if (i < prefixLength || nameOff === 0) continue;
      ids.push(id);
      if (this.#nameEquals(nameOff, needle)) {
        family.walkedTo = id;
        return id;
      }
    }
  }

  /** Like {@link findId} but throws a one-line error naming what is missing. */
  getId(name: string, kind?: BtfKindName): number {
    const id = this.findId(name, kind);
    if (id === undefined) {
      throw new Error(`BTF: no ${kind ? kind.toLowerCase() + " " : "type "}'${name}'`);
    }
    return id;
  }

  /** The struct or union named `name` (or a typedef of one), for layout queries. */
  compositeId(name: string): number {
    const bare = name.replace(/^(struct|union)\s+/, "");
    const id = (name.startsWith("union ") ? undefined : this.findId(bare, "STRUCT")) ??
      (name.startsWith("struct ") ? undefined : this.findId(bare, "UNION"));
    if (id !== undefined) return id;
    const typedef = this.findId(bare, "TYPEDEF");
    if (typedef !== undefined) {
      const resolved = this.resolve(typedef);
      const k = this.#kindOf(resolved);
      if (k === BtfKind.STRUCT || k === BtfKind.UNION) return resolved;
    }
    throw new Error(`BTF: no struct or union '${bare}'`);
  }

  /**
   * Member `name` of struct/union `compositeId`, also looking inside anonymous
   * struct/union members (as C does). `bitOffset` is from the start of
   * `compositeId`. Compares name bytes, so no member is decoded.
   */
  findMember(compositeId: number, name: string): BtfMember | undefined {
    return this.#findMember(compositeId, encoder.encode(name), name, 0);
  }

  #findMember(id: number, needle: Uint8Array, name: string, depth: number): BtfMember | undefined {
    const w = this.#words;
    const p = this.#start(id);
    const info = w[p + 1];
    const kind = (info >>> 24) & 0x1f;
    if ((kind !== BtfKind.STRUCT && kind !== BtfKind.UNION) || depth > 32) return undefined;
    const kindFlag = (info >>> 31) === 1;
    const vlen = info & 0xffff;
    for (let i = 0; i < vlen; i++) {
      const m = p + 3 + 3 * i;
      const nameOff = w[m];
      const offset = w[m + 2];
      const bitOffset = kindFlag ? offset & 0xffffff : offset;
      if (nameOff === 0) {
        const inner = this.#findMember(this.resolve(w[m + 1]), needle, name, depth + 1);
        if (inner) return { ...inner, bitOffset: bitOffset + inner.bitOffset };
      } else if (this.#nameEquals(nameOff, needle)) {
        return { name, type: w[m + 1], bitOffset, bitfieldSize: kindFlag ? offset >>> 24 : 0 };
      }
    }
    return undefined;
  }

  // ---- decoding ----

  /** Decodes type `id` (cached). Id 0 is `void`. */
  type(id: number): BtfType {
    if (id === 0) return { id: 0, kind: "VOID", name: "void" };
    let t = this.#typeCache.get(id);
    if (!t) {
      t = this.#decode(id);
      this.#typeCache.set(id, t);
    }
    return t;
  }

  #decode(id: number): BtfType {
    const w = this.#words;
    const p = this.#start(id);
    const info = w[p + 1];
    const kind = (info >>> 24) & 0x1f;
    const vlen = info & 0xffff;
    const kindFlag = (info >>> 31) === 1;
    const sizeOrType = w[p + 2];
    const name = w[p] === 0 ? "" : this.stringAt(w[p]);
    const str = (off: number) => (off === 0 ? "" : this.stringAt(off));
    const x = p + 3; // first extra word
    switch (kind) {
      case BtfKind.INT: {
        const data = w[x];
        const encoding = (data >>> 24) & 0x0f;
        return {
          id,
          kind: "INT",
          name,
          size: sizeOrType,
          signed: (encoding & BtfIntEncoding.SIGNED) !== 0,
          char: (encoding & BtfIntEncoding.CHAR) !== 0,
          bool: (encoding & BtfIntEncoding.BOOL) !== 0,
          bitOffset: (data >>> 16) & 0xff,
          bits: data & 0xff,
        };
      }
      case BtfKind.PTR:
      case BtfKind.TYPEDEF:
      case BtfKind.VOLATILE:
      case BtfKind.CONST:
      case BtfKind.RESTRICT:
      case BtfKind.TYPE_TAG:
        return {
          id,
          kind: BTF_KIND_NAMES[kind] as "PTR",
          name,
          type: sizeOrType,
        };
      case BtfKind.ARRAY:
        return { id, kind: "ARRAY", name, type: w[x], indexType: w[x + 1], nelems: w[x + 2] };
      case BtfKind.STRUCT:
      case BtfKind.UNION: {
        const members = [];
        for (let i = 0; i < vlen; i++) {
          const m = x + 3 * i;
          const offset = w[m + 2];
          members.push({
            name: str(w[m]),
            type: w[m + 1],
            bitOffset: kindFlag ? offset & 0xffffff : offset,
            bitfieldSize: kindFlag ? offset >>> 24 : 0,
          });
        }
        return {
          id,
          kind: kind === BtfKind.STRUCT ? "STRUCT" : "UNION",
          name,
          size: sizeOrType,
          members,
        };
      }
      case BtfKind.ENUM: {
        const values = [];
        for (let i = 0; i < vlen; i++) {
          const raw = w[x + 2 * i + 1];
          values.push({ name: str(w[x + 2 * i]), value: kindFlag ? raw | 0 : raw });
        }
        return { id, kind: "ENUM", name, size: sizeOrType, signed: kindFlag, values };
      }
      case BtfKind.ENUM64: {
        const values = [];
        for (let i = 0; i < vlen; i++) {
          const e = x + 3 * i;
          const raw = (BigInt(w[e + 2]) << 32n) | BigInt(w[e + 1]);
          values.push({ name: str(w[e]), value: kindFlag ? BigInt.asIntN(64, raw) : raw });
        }
        return { id, kind: "ENUM64", name, size: sizeOrType, signed: kindFlag, values };
      }
      case BtfKind.FWD:
        return { id, kind: "FWD", name, union: kindFlag };
      case BtfKind.FUNC:
        return { id, kind: "FUNC", name, type: sizeOrType, linkage: vlen };
      case BtfKind.FUNC_PROTO: {
        const params: BtfParam[] = [];
        for (let i = 0; i < vlen; i++) {
          params.push({ name: str(w[x + 2 * i]), type: w[x + 2 * i + 1] });
        }
        const last = params[params.length - 1];
        const variadic = last !== undefined && last.type === 0 && last.name === "";
        if (variadic) params.pop();
        return { id, kind: "FUNC_PROTO", name, returnType: sizeOrType, params, variadic };
      }
      case BtfKind.VAR:
        return { id, kind: "VAR", name, type: sizeOrType, linkage: w[x] };
      case BtfKind.DATASEC: {
        const vars = [];
        for (let i = 0; i < vlen; i++) {
          const v = x + 3 * i;
          vars.push({ type: w[v], offset: w[v + 1], size: w[v + 2] });
        }
        return { id, kind: "DATASEC", name, size: sizeOrType, vars };
      }
      case BtfKind.FLOAT:
        return { id, kind: "FLOAT", name, size: sizeOrType };
      case BtfKind.DECL_TAG:
        return { id, kind: "DECL_TAG", name, type: sizeOrType, componentIdx: w[x] | 0 };
      default:
        throw new Error(`BTF: type ${id} has unknown kind ${kind}`);
    }
  }

  // ---- derived facts ----

  /** Follows TYPEDEF, CONST, VOLATILE, RESTRICT and TYPE_TAG to the underlying type id. */
  resolve(id: number): number {
    for (let hops = 0; hops < 64; hops++) {
      switch (this.#kindOf(id)) {
        case BtfKind.TYPEDEF:
        case BtfKind.CONST:
        case BtfKind.VOLATILE:
        case BtfKind.RESTRICT:
        case BtfKind.TYPE_TAG:
          id = this.#sizeOrType(id);
          break;
        default:
          return id;
      }
    }
    throw new Error(`BTF: modifier chain of type ${id} is too long (loop?)`);
  }

  /** Size in bytes of a type; throws for void, functions and forward declarations. */
  sizeOf(id: number): number {
    const resolved = this.resolve(id);
    switch (this.#kindOf(resolved)) {
      case BtfKind.INT:
      case BtfKind.STRUCT:
      case BtfKind.UNION:
      case BtfKind.ENUM:
      case BtfKind.ENUM64:
      case BtfKind.FLOAT:
      case BtfKind.DATASEC:
        return this.#sizeOrType(resolved);
      case BtfKind.PTR:
        return POINTER_SIZE;
      case BtfKind.ARRAY: {
        const p = this.#start(resolved);
        return this.#words[p + 5] * this.sizeOf(this.#words[p + 3]);
      }
      case BtfKind.VAR:
        return this.sizeOf(this.#sizeOrType(resolved));
      default:
        throw new Error(`BTF: type ${this.typeToString(id)} has no size`);
    }
  }

  /** Whether a type is a signed integer or a signed enum (after {@link resolve}). */
  isSigned(id: number): boolean {
    const t = this.type(this.resolve(id));
    return (t.kind === "INT" || t.kind === "ENUM" || t.kind === "ENUM64") && t.signed;
  }

  /**
   * A C-like spelling of a type, for messages and code generation:
   * `struct task_struct *`, `const char *`, `pid_t`, `char[16]`.
   */
  typeToString(id: number): string {
    return this.#spell(id, "", 0).trim();
  }

  #spell(id: number, suffix: string, depth: number): string {
    if (depth > 32) return "..." + suffix;
    const t = this.type(id);
    switch (t.kind) {
      case "VOID":
        return "void" + suffix;
      case "PTR":
        return this.#spell(t.type, " *" + suffix.trimStart(), depth + 1);
      case "CONST":
      case "VOLATILE":
      case "RESTRICT":
        return `${t.kind.toLowerCase()} ${this.#spell(t.type, suffix, depth + 1)}`;
      case "TYPE_TAG":
        return this.#spell(t.type, suffix, depth + 1);
      case "ARRAY":
        return this.#spell(t.type, `${suffix}[${t.nelems}]`, depth + 1);
      case "STRUCT":
      case "UNION":
        return `${t.kind.toLowerCase()} ${t.name || "(anon)"}${suffix}`;
      case "ENUM":
      case "ENUM64":
        return `enum ${t.name || "(anon)"}${suffix}`;
      case "FWD":
        return `${t.union ? "union" : "struct"} ${t.name}${suffix}`;
      case "FUNC_PROTO":
        return `${this.typeToString(t.returnType)} (${suffix.trim()})(${
          t.params.map((p) => this.typeToString(p.type)).join(", ")
        }${t.variadic ? ", ..." : ""})`;
      default:
        return t.name + suffix;
    }
  }

  /**
   * Layout of a (possibly nested) field of a struct or union: `"pid"`,
   * `"se.vruntime"`, `"signal_rlim[0]"`-style indices too. Members of
   * anonymous structs/unions are found transparently. A path cannot go
   * through a pointer: look the pointee up separately. `structName` may be
   * `"task_struct"`, `"struct task_struct"` or a typedef of a struct.
   *
   * @example
   * ```ts
   * import { Btf } from "./btf.ts";
   * const btf = Btf.vmlinux();
   * const ns = btf.field("task_struct", "nsproxy"); // { isPointer: true, pointee: "nsproxy", ... }
   * const pidNs = btf.field(ns.pointee!, "pid_ns_for_children");
   * ```
   */
  field(structName: string, path: string): FieldLayout {
    return fieldLayout(this, structName, path);
  }

  /**
   * Value of enumerator `enumerator` of enum `enumName` (ENUM or ENUM64).
   * 64-bit enums give a bigint when the value does not fit a safe integer.
   *
   * @example
   * ```ts
   * import { Btf } from "./btf.ts";
   * const write = Btf.vmlinux().enumValue("req_op", "REQ_OP_WRITE"); // 1
   * ```
   */
  enumValue(enumName: string, enumerator: string): number | bigint {
    const id = this.findId(enumName, "ENUM") ?? this.findId(enumName, "ENUM64");
    if (id === undefined) throw new Error(`BTF: no enum '${enumName}'`);
    const t = this.type(id);
    if (t.kind !== "ENUM" && t.kind !== "ENUM64") {
      throw new Error(`BTF: '${enumName}' is not an enum`);
    }
    const entry = t.values.find((v) => v.name === enumerator);
    if (!entry) {
      throw new Error(`BTF: enum ${enumName} has no enumerator '${enumerator}'`);
    }
    const value = entry.value;
    return typeof value === "bigint" && value <= BigInt(Number.MAX_SAFE_INTEGER) &&
        value >= BigInt(Number.MIN_SAFE_INTEGER)
      ? Number(value)
      : value;
  }

  /**
   * Parameters of a function: `name` may be a FUNC, a FUNC_PROTO's typedef or
   * a typedef of a pointer to a FUNC_PROTO (like `btf_trace_sched_switch`).
   */
  funcProtoParams(name: string): { name: string; typeId: number }[] {
    const id = this.findId(name, "FUNC") ?? this.findId(name, "TYPEDEF");
    if (id === undefined) throw new Error(`BTF: no function or typedef '${name}'`);
    const proto = this.funcProtoOf(id);
    if (proto === undefined) {
      throw new Error(`BTF: '${name}' is not a function (it is ${this.typeToString(id)})`);
    }
    const t = this.type(proto);
    if (t.kind !== "FUNC_PROTO") throw new Error(`BTF: '${name}' has no prototype`);
    return t.params.map((p) => ({ name: p.name, typeId: p.type }));
  }

  /** The FUNC_PROTO id behind a FUNC, a FUNC_PROTO, or (a typedef of) a pointer to one. */
  funcProtoOf(id: number): number | undefined {
    let resolved = this.resolve(id);
    if (this.#kindOf(resolved) === BtfKind.FUNC) resolved = this.#sizeOrType(resolved);
    if (this.#kindOf(resolved) === BtfKind.PTR) resolved = this.resolve(this.#sizeOrType(resolved));
    return this.#kindOf(resolved) === BtfKind.FUNC_PROTO ? resolved : undefined;
  }
}
