/**
 * Where a struct field lives: byte offset, size, signedness and bitfield
 * position, found through nested and anonymous members.
 *
 * @module
 */

import type { Btf } from "./btf.ts";
import type { BtfKindName, BtfMember } from "./kinds.ts";

/** Layout of one struct/union field, ready for a BPF load. */
export interface FieldLayout {
  /**
   * Byte offset from the start of the outer struct. For a bitfield, the
   * offset of the `size`-byte little-endian unit that holds it.
   */
  offset: number;
  /** Bytes to load: the field's size, or the bitfield's storage unit. */
  size: number;
  /** Whether the value (or an array's element) is a signed integer or enum. */
  signed: boolean;
  /** For bitfields: shift the loaded unit right by this many bits... */
  bitOffset?: number;
  /** ...and keep this many bits. */
  bitSize?: number;
  /** Declared type id of the field (may be a typedef; see `Btf.resolve`). */
  typeId: number;
  /** Kind of the field's type after resolving typedefs and qualifiers. */
  kind: BtfKindName;
  /** Whether the field (after resolving typedefs) is a pointer. */
  isPointer: boolean;
  /**
   * For pointers: the pointee's name, bare for structs and unions so it can be
   * passed to `Btf.field` (`"nsproxy"`), else spelled as C (`"char"`, `"void"`).
   */
  pointee?: string;
  /** For pointers: the pointee's type id (typedefs resolved). */
  pointeeTypeId?: number;
  /** For arrays: number of elements. */
  arrayLength?: number;
  /** For arrays: element type id (as declared). */
  elementTypeId?: number;
}

function describe(btf: Btf, id: number): string {
  const t = btf.type(id);
  return `${t.kind.toLowerCase()} ${t.name || "(anon)"}`;
}

/** Smallest load size (1, 2, 4, 8) holding `bits` bits. */
function loadSizeFor(bits: number): number {
  return bits <= 8 ? 1 : bits <= 16 ? 2 : bits <= 32 ? 4 : 8;
}

/** `name`, `name[3]` or `name[0][2]`. */
const PATH_PART = /^([A-Za-z_][A-Za-z0-9_]*)((?:\[\d+\])*)$/;

/**
 * Layout of `path` in struct or union `structName`: dot-separated members,
 * each optionally indexed (`"se.vruntime"`, `"comm[0]"`, `"rlim[7].rlim_cur"`).
 * Errors are one line and name the struct and the field.
 */
export function fieldLayout(btf: Btf, structName: string, path: string): FieldLayout {
  const rootId = btf.compositeId(structName);
  if (path.includes("->")) {
    const [head] = path.split("->");
    throw new Error(
      `BTF: field path '${path}' goes through a pointer; look up '${head}' in ${
        describe(btf, rootId)
      } and the rest in its pointee`,
    );
  }
  const parts = path.split(".");
  let compositeId = rootId;
  let bitOffset = 0;
  let member: BtfMember | undefined;
  let walked = "";
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i];
    const parsed = PATH_PART.exec(part);
    if (!parsed) throw new Error(`BTF: bad component '${part}' in field path '${path}'`);
    const [, name, indices] = parsed;
    if (i > 0) {
      const resolved = btf.resolve(member!.type);
      const t = btf.type(resolved);
      if (t.kind === "PTR") {
        throw new Error(
          `BTF: ${structName}.${walked} is a pointer (${btf.typeToString(member!.type)}); ` +
            `read it, then look up '${parts.slice(i).join(".")}' in ${
              btf.typeToString(btf.resolve(t.type))
            }`,
        );
      }
      if (t.kind !== "STRUCT" && t.kind !== "UNION") {
        throw new Error(
          `BTF: ${structName}.${walked} is ${btf.typeToString(member!.type)}, not a struct; ` +
            `it has no field '${name}'`,
        );
      }
      compositeId = resolved;
    }
    member = btf.findMember(compositeId, name);
    if (!member) {
      const where = i === 0 ? "" : ` (looking up ${structName}.${path})`;
      throw new Error(`BTF: ${describe(btf, compositeId)} has no field '${name}'${where}`);
    }
    bitOffset += member.bitOffset;
    walked = walked ? `${walked}.${name}` : name;
    for (const index of indices.match(/\d+/g) ?? []) {
      const array = btf.type(btf.resolve(member.type));
      const n = Number(index);
      // nelems 0 is a flexible array member: any index is allowed.
      if (array.kind !== "ARRAY" || (array.nelems > 0 && n >= array.nelems)) {
        throw new Error(
          `BTF: ${structName}.${walked} is ${btf.typeToString(member.type)}; index [${n}] is ${
            array.kind === "ARRAY" ? "out of range" : "not allowed"
          }`,
        );
      }
      bitOffset += n * btf.sizeOf(array.type) * 8;
      walked += `[${n}]`;
      member = { name: walked, type: array.type, bitOffset: 0, bitfieldSize: 0 };
    }
  }
  return layoutOf(btf, member!, bitOffset);
}

function layoutOf(btf: Btf, member: BtfMember, bitOffset: number): FieldLayout {
  const resolved = btf.resolve(member.type);
  const t = btf.type(resolved);
  const layout: FieldLayout = {
    offset: 0,
    size: 0,
    signed: false,
    typeId: member.type,
    kind: t.kind,
    isPointer: t.kind === "PTR",
  };
  let bitSize = member.bitfieldSize;
  if (t.kind === "INT" && (t.bitOffset !== 0 || t.bits !== t.size * 8) && bitSize === 0) {
    // Old encoding (struct without kind_flag): the INT itself carries the bit range.
    bitOffset += t.bitOffset;
    bitSize = t.bits;
  }
  if (bitSize > 0) {
    const typeBits = btf.sizeOf(resolved) * 8;
    // Prefer the naturally aligned unit of the declared type; packed structs may
    // place a bitfield across it, then load the smallest unit from its first byte.
    let unitStart = Math.floor(bitOffset / typeBits) * typeBits;
    let unitBits = typeBits;
    if (bitOffset - unitStart + bitSize > unitBits) {
      unitStart = Math.floor(bitOffset / 8) * 8;
      unitBits = loadSizeFor(bitOffset - unitStart + bitSize) * 8;
    }
    layout.offset = unitStart / 8;
    layout.size = unitBits / 8;
    layout.bitOffset = bitOffset - unitStart;
    layout.bitSize = bitSize;
    layout.signed = btf.isSigned(resolved);
    return layout;
  }
  if (bitOffset % 8 !== 0) {
    throw new Error(`BTF: member '${member.name}' is at bit ${bitOffset}, not on a byte boundary`);
  }
  layout.offset = bitOffset / 8;
  if (t.kind === "FUNC_PROTO" || t.kind === "VOID" || t.kind === "FWD") {
    throw new Error(
      `BTF: member '${member.name}' has incomplete type ${btf.typeToString(member.type)}`,
    );
  }
  layout.size = btf.sizeOf(resolved);
  if (t.kind === "PTR") {
    const pointee = btf.resolve(t.type);
    const p = btf.type(pointee);
    layout.pointeeTypeId = pointee;
    layout.pointee = p.kind === "STRUCT" || p.kind === "UNION" || p.kind === "FWD"
      ? p.name
      : btf.typeToString(pointee);
  } else if (t.kind === "ARRAY") {
    layout.arrayLength = t.nelems;
    layout.elementTypeId = t.type;
    layout.signed = btf.isSigned(t.type);
  } else {
    layout.signed = btf.isSigned(resolved);
  }
  return layout;
}
