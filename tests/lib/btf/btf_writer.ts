/**
 * A minimal BTF builder: the parser tests build small blobs with it (bitfields,
 * byte order, duplicate names) that vmlinux does not have. Test support, not
 * product: no tool loads BTF of its own. writer.test.ts checks its blobs
 * against bpftool and the kernel.
 *
 * @module
 */

import {
  BTF_HEADER_SIZE,
  BTF_MAGIC,
  BTF_VERSION,
  BtfFuncLinkage,
  BtfIntEncoding,
  BtfKind,
} from "../../../lib/btf/kinds.ts";

/** A struct or union member for {@link BtfWriter.addStruct}. */
export interface BtfWriterMember {
  /** Member name ("" for an anonymous struct/union member). */
  name: string;
  /** Member type id (from this writer). */
  typeId: number;
  /** Offset in bits; when omitted, the next naturally aligned offset. */
  bitOffset?: number;
  /** Bitfield width in bits; 0 or omitted for ordinary members. */
  bitfieldSize?: number;
}

/** Options of an integer type. */
export interface BtfIntOptions {
  /** BTF_INT_SIGNED. */
  signed?: boolean;
  /** BTF_INT_CHAR. */
  char?: boolean;
  /** BTF_INT_BOOL. */
  bool?: boolean;
  /** Value bits; defaults to `size * 8`. */
  bits?: number;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Base type names may have spaces: `unsigned long long`. */
const BASE_TYPE_NAME = /^[A-Za-z_][A-Za-z0-9_ ]*[A-Za-z0-9_]$|^[A-Za-z_]$/;

/**
 * Builds a BTF blob type by type. Ids are handed out in order from 1 (0 is
 * void); the result of {@link build} is what `BPF_BTF_LOAD` takes.
 *
 * @example
 * ```ts
 * import { BtfWriter } from "./writer.ts";
 * const w = new BtfWriter();
 * const int = w.addInt("int", 4, { signed: true });
 * const u64 = w.addInt("unsigned long long", 8);
 * const value = w.addStruct("task_value", [{ name: "start_ns", typeId: u64 }]);
 * const blob = w.build(); // key type: int, value type: value
 * ```
 */
export class BtfWriter {
  readonly #types: number[][] = [];
  readonly #sizes: number[] = [0];
  readonly #aligns: number[] = [1];
  readonly #stringChunks: Uint8Array[] = [new Uint8Array(1)];
  readonly #stringOffsets = new Map<string, number>([["", 0]]);
  #stringLength = 1;
  readonly #encoder = new TextEncoder();

  /** Offset of `s` in the string section, adding it once. */
  addString(s: string): number {
    let offset = this.#stringOffsets.get(s);
    if (offset === undefined) {
      const bytes = this.#encoder.encode(s);
      if (bytes.includes(0)) {
        throw new Error(`BTF writer: string contains NUL: ${JSON.stringify(s)}`);
      }
      offset = this.#stringLength;
      this.#stringChunks.push(bytes, new Uint8Array(1));
      this.#stringLength += bytes.length + 1;
      this.#stringOffsets.set(s, offset);
    }
    return offset;
  }

  /** Number of types added so far (the last id). */
  get typeCount(): number {
    return this.#types.length;
  }

  #name(name: string, what: string, optional: boolean): number {
    if (name === "" && optional) return 0;
    const pattern = what === "int" ? BASE_TYPE_NAME : IDENTIFIER;
    if (!pattern.test(name)) throw new Error(`BTF writer: invalid ${what} name '${name}'`);
    return this.addString(name);
  }

  #check(id: number, what: string): void {
    if (!Number.isInteger(id) || id < 0 || id > this.#types.length) {
      throw new Error(`BTF writer: ${what} refers to unknown type id ${id}`);
    }
  }

  #add(
    nameOff: number,
    kind: number,
    vlen: number,
    kindFlag: boolean,
    sizeOrType: number,
    extra: number[],
    size: number,
    align: number,
  ): number {
    const info = ((kindFlag ? 1 : 0) << 31) | (kind << 24) | (vlen & 0xffff);
    this.#types.push([nameOff, info >>> 0, sizeOrType >>> 0, ...extra.map((x) => x >>> 0)]);
    this.#sizes.push(size);
    this.#aligns.push(align);
    return this.#types.length;
  }

  /** Size in bytes of a type added to this writer (void: 0, functions: 0). */
  sizeOf(id: number): number {
    this.#check(id, "sizeOf");
    return this.#sizes[id];
  }

  /** An integer type of `size` bytes (1, 2, 4, 8 or 16). */
  addInt(name: string, size: number, options: BtfIntOptions = {}): number {
    if (![1, 2, 4, 8, 16].includes(size)) throw new Error(`BTF writer: bad int size ${size}`);
    const bits = options.bits ?? size * 8;
    const encoding = (options.signed ? BtfIntEncoding.SIGNED : 0) |
      (options.char ? BtfIntEncoding.CHAR : 0) | (options.bool ? BtfIntEncoding.BOOL : 0);
    return this.#add(
      this.#name(name, "int", false),
      BtfKind.INT,
      0,
      false,
      size,
      [(encoding << 24) | bits],
      size,
      Math.min(size, 8),
    );
  }

  /** A pointer to `typeId`. */
  addPtr(typeId: number): number {
    this.#check(typeId, "pointer");
    return this.#add(0, BtfKind.PTR, 0, false, typeId, [], 8, 8);
  }

  /** An array of `nelems` elements of `elementTypeId`, indexed by `indexTypeId` (an int). */
  addArray(elementTypeId: number, indexTypeId: number, nelems: number): number {
    this.#check(elementTypeId, "array element");
    this.#check(indexTypeId, "array index");
    return this.#add(
      0,
      BtfKind.ARRAY,
      0,
      false,
      0,
      [elementTypeId, indexTypeId, nelems],
      this.#sizes[elementTypeId] * nelems,
      this.#aligns[elementTypeId],
    );
  }

  #composite(
    kind: number,
    name: string,
    members: BtfWriterMember[],
    explicitSize: number | undefined,
  ): number {
    const isUnion = kind === BtfKind.UNION;
    const hasBitfields = members.some((m) => (m.bitfieldSize ?? 0) > 0);
    const extra: number[] = [];
    let endBits = 0;
    let align = 1;
    for (const m of members) {
      this.#check(m.typeId, `member '${m.name}'`);
      const memberAlign = this.#aligns[m.typeId];
      const memberBits = m.bitfieldSize || this.#sizes[m.typeId] * 8;
      let bitOffset = m.bitOffset;
      if (bitOffset === undefined) {
        if (m.bitfieldSize) {
          throw new Error(`BTF writer: bitfield '${m.name}' needs an explicit bitOffset`);
        }
        const alignBits = memberAlign * 8;
        bitOffset = isUnion ? 0 : Math.ceil(endBits / alignBits) * alignBits;
      }
      const bitfieldSize = m.bitfieldSize ?? 0;
      if (hasBitfields && (bitfieldSize > 255 || bitOffset > 0xffffff)) {
        throw new Error(`BTF writer: member '${m.name}' bitfield out of range`);
      }
      extra.push(
        this.#name(m.name, "member", true),
        m.typeId,
        hasBitfields ? (bitfieldSize << 24) | bitOffset : bitOffset,
      );
      endBits = Math.max(endBits, bitOffset + memberBits);
      align = Math.max(align, memberAlign);
    }
    const naturalSize = Math.ceil(endBits / 8 / align) * align;
    const size = explicitSize ?? naturalSize;
    if (size * 8 < endBits) {
      throw new Error(
        `BTF writer: ${name || "anonymous"} size ${size} is smaller than its members`,
      );
    }
    return this.#add(
      this.#name(name, "struct", true),
      kind,
      members.length,
      hasBitfields,
      size,
      extra,
      size,
      align,
    );
  }

  /**
   * A struct. Members without `bitOffset` are placed at the next naturally
   * aligned offset; `size` defaults to the aligned end of the last member.
   */
  addStruct(name: string, members: BtfWriterMember[], size?: number): number {
    return this.#composite(BtfKind.STRUCT, name, members, size);
  }

  /** A union (members default to offset 0). */
  addUnion(name: string, members: BtfWriterMember[], size?: number): number {
    return this.#composite(BtfKind.UNION, name, members, size);
  }

  /** A 4-byte enum. */
  addEnum(name: string, values: { name: string; value: number }[], signed = false): number {
    const extra: number[] = [];
    for (const v of values) extra.push(this.#name(v.name, "enumerator", false), v.value);
    return this.#add(
      this.#name(name, "enum", true),
      BtfKind.ENUM,
      values.length,
      signed,
      4,
      extra,
      4,
      4,
    );
  }

  /** `typedef <typeId> name`. */
  addTypedef(name: string, typeId: number): number {
    this.#check(typeId, `typedef '${name}'`);
    return this.#add(
      this.#name(name, "typedef", false),
      BtfKind.TYPEDEF,
      0,
      false,
      typeId,
      [],
      this.#sizes[typeId],
      this.#aligns[typeId],
    );
  }

  /** `const <typeId>`. */
  addConst(typeId: number): number {
    this.#check(typeId, "const");
    return this.#add(
      0,
      BtfKind.CONST,
      0,
      false,
      typeId,
      [],
      this.#sizes[typeId],
      this.#aligns[typeId],
    );
  }

  /** `volatile <typeId>`. */
  addVolatile(typeId: number): number {
    this.#check(typeId, "volatile");
    return this.#add(
      0,
      BtfKind.VOLATILE,
      0,
      false,
      typeId,
      [],
      this.#sizes[typeId],
      this.#aligns[typeId],
    );
  }

  /** A function prototype; `variadic` appends the `...` marker. */
  addFuncProto(
    returnTypeId: number,
    params: { name: string; typeId: number }[],
    variadic = false,
  ): number {
    this.#check(returnTypeId, "return type");
    const extra: number[] = [];
    for (const p of params) {
      this.#check(p.typeId, `parameter '${p.name}'`);
      extra.push(this.#name(p.name, "parameter", true), p.typeId);
    }
    if (variadic) extra.push(0, 0);
    return this.#add(0, BtfKind.FUNC_PROTO, extra.length / 2, false, returnTypeId, extra, 0, 1);
  }

  /** A function named `name` with prototype `protoId`. */
  addFunc(name: string, protoId: number, linkage: number = BtfFuncLinkage.GLOBAL): number {
    this.#check(protoId, `function '${name}'`);
    return this.#add(
      this.#name(name, "function", false),
      BtfKind.FUNC,
      linkage,
      false,
      protoId,
      [],
      0,
      1,
    );
  }

  /** The BTF blob: header, type section, string section. */
  build(): Uint8Array {
    const typeWords = this.#types.reduce((n, t) => n + t.length, 0);
    const typeLen = typeWords * 4;
    const strLen = this.#stringLength;
    const out = new Uint8Array(BTF_HEADER_SIZE + typeLen + strLen);
    const view = new DataView(out.buffer);
    view.setUint16(0, BTF_MAGIC, true);
    view.setUint8(2, BTF_VERSION);
    view.setUint8(3, 0); // flags
    view.setUint32(4, BTF_HEADER_SIZE, true);
    view.setUint32(8, 0, true); // type_off
    view.setUint32(12, typeLen, true);
    view.setUint32(16, typeLen, true); // str_off
    view.setUint32(20, strLen, true);
    let p = BTF_HEADER_SIZE;
    for (const type of this.#types) {
      for (const word of type) {
        view.setUint32(p, word, true);
        p += 4;
      }
    }
    for (const chunk of this.#stringChunks) {
      out.set(chunk, p);
      p += chunk.length;
    }
    return out;
  }
}
