/**
 * BTF type kinds and the decoded shape of each kind, as the kernel's
 * Documentation/bpf/btf.rst and uapi `linux/btf.h` define them.
 *
 * @module
 */

/** `btf_header.magic`. */
export const BTF_MAGIC = 0xeb9f;
/** `btf_header.version` this code reads and writes. */
export const BTF_VERSION = 1;
/** Size of `struct btf_header`. */
export const BTF_HEADER_SIZE = 24;

/** Kind numbers (`BTF_KIND_*`), the value of bits 24..28 of `btf_type.info`. */
export const BtfKind = {
  UNKN: 0,
  INT: 1,
  PTR: 2,
  ARRAY: 3,
  STRUCT: 4,
  UNION: 5,
  ENUM: 6,
  FWD: 7,
  TYPEDEF: 8,
  VOLATILE: 9,
  CONST: 10,
  RESTRICT: 11,
  FUNC: 12,
  FUNC_PROTO: 13,
  VAR: 14,
  DATASEC: 15,
  FLOAT: 16,
  DECL_TAG: 17,
  TYPE_TAG: 18,
  ENUM64: 19,
} as const;

/** Name of a kind; `VOID` is the pseudo kind of type id 0. */
export type BtfKindName = Exclude<keyof typeof BtfKind, "UNKN"> | "VOID";

/** Kind number -> name, indexed by `BtfKind` value. */
export const BTF_KIND_NAMES: readonly (BtfKindName | undefined)[] = (() => {
  const names: (BtfKindName | undefined)[] = [];
  for (const [name, value] of Object.entries(BtfKind)) {
    if (name !== "UNKN") names[value] = name as BtfKindName;
  }
  return names;
})();

/** `BTF_INT_*` encoding bits (bits 24..27 of the INT's extra word). */
export const BtfIntEncoding = { SIGNED: 1, CHAR: 2, BOOL: 4 } as const;

/** `BTF_FUNC_*` linkage of a FUNC (stored in its vlen). */
export const BtfFuncLinkage = { STATIC: 0, GLOBAL: 1, EXTERN: 2 } as const;

/** Fields every decoded type has. */
export interface BtfTypeCommon {
  /** Type id (0 is void). */
  id: number;
  /** Name, or "" for anonymous types. */
  name: string;
}

/** Type id 0. */
export interface BtfVoid extends BtfTypeCommon {
  /** The BTF kind, as its uapi name (BTF_KIND_<name>). */
  kind: "VOID";
}

/** An integer type (`int`, `unsigned long`, `_Bool`, `char`). */
export interface BtfInt extends BtfTypeCommon {
  /** The BTF kind, as its uapi name (BTF_KIND_<name>). */
  kind: "INT";
  /** Storage size in bytes. */
  size: number;
  /** Whether BTF_INT_SIGNED is set. */
  signed: boolean;
  /** Whether BTF_INT_CHAR is set. */
  char: boolean;
  /** Whether BTF_INT_BOOL is set. */
  bool: boolean;
  /** BTF_INT_OFFSET: start bit of the value inside the storage (0 in modern BTF). */
  bitOffset: number;
  /** BTF_INT_BITS: number of value bits. */
  bits: number;
}

/** A type that only refers to another type. */
export interface BtfRef extends BtfTypeCommon {
  /** The BTF kind, as its uapi name (BTF_KIND_<name>). */
  kind: "PTR" | "TYPEDEF" | "VOLATILE" | "CONST" | "RESTRICT" | "TYPE_TAG";
  /** The referenced type id (for TYPE_TAG the name is the tag). */
  type: number;
}

/** A fixed array. */
export interface BtfArray extends BtfTypeCommon {
  /** The BTF kind, as its uapi name (BTF_KIND_<name>). */
  kind: "ARRAY";
  /** Element type id. */
  type: number;
  /** Index type id. */
  indexType: number;
  /** Number of elements. */
  nelems: number;
}

/** A member of a struct or union. */
export interface BtfMember {
  /** Member name, "" for anonymous struct/union members. */
  name: string;
  /** Member type id. */
  type: number;
  /** Offset in bits from the start of the enclosing struct/union. */
  bitOffset: number;
  /** Width of a bitfield, 0 when the member is not a bitfield (kind_flag encoding). */
  bitfieldSize: number;
}

/** A struct or union. */
export interface BtfComposite extends BtfTypeCommon {
  /** The BTF kind, as its uapi name (BTF_KIND_<name>). */
  kind: "STRUCT" | "UNION";
  /** Size in bytes. */
  size: number;
  /** Members in declaration order. */
  members: BtfMember[];
}

/** A 32-bit enum. */
export interface BtfEnum extends BtfTypeCommon {
  /** The BTF kind, as its uapi name (BTF_KIND_<name>). */
  kind: "ENUM";
  /** Size in bytes (1, 2, 4 or 8). */
  size: number;
  /** kind_flag: values are signed. */
  signed: boolean;
  /** Enumerators. */
  values: { name: string; value: number }[];
}

/** A 64-bit enum. */
export interface BtfEnum64 extends BtfTypeCommon {
  /** The BTF kind, as its uapi name (BTF_KIND_<name>). */
  kind: "ENUM64";
  /** Size in bytes. */
  size: number;
  /** kind_flag: values are signed. */
  signed: boolean;
  /** Enumerators. */
  values: { name: string; value: bigint }[];
}

/** A forward declaration `struct x;` or `union x;`. */
export interface BtfFwd extends BtfTypeCommon {
  /** The BTF kind, as its uapi name (BTF_KIND_<name>). */
  kind: "FWD";
  /** kind_flag: a union, not a struct. */
  union: boolean;
}

/** A function (its `type` is a FUNC_PROTO). */
export interface BtfFunc extends BtfTypeCommon {
  /** The BTF kind, as its uapi name (BTF_KIND_<name>). */
  kind: "FUNC";
  /** FUNC_PROTO type id. */
  type: number;
  /** One of {@link BtfFuncLinkage}. */
  linkage: number;
}

/** A parameter of a function prototype. */
export interface BtfParam {
  /** Parameter name ("" when BTF does not record it). */
  name: string;
  /** Parameter type id. */
  type: number;
}

/** A function prototype. */
export interface BtfFuncProto extends BtfTypeCommon {
  /** The BTF kind, as its uapi name (BTF_KIND_<name>). */
  kind: "FUNC_PROTO";
  /** Return type id (0 for void). */
  returnType: number;
  /** Parameters, without the trailing `...` entry. */
  params: BtfParam[];
  /** Whether the last BTF parameter was the `...` marker (type 0, no name). */
  variadic: boolean;
}

/** A global or static variable. */
export interface BtfVar extends BtfTypeCommon {
  /** The BTF kind, as its uapi name (BTF_KIND_<name>). */
  kind: "VAR";
  /** Variable type id. */
  type: number;
  /** 0 static, 1 global, 2 extern. */
  linkage: number;
}

/** A data section (`.data`, `.bss`, `.data..percpu`). */
export interface BtfDatasec extends BtfTypeCommon {
  /** The BTF kind, as its uapi name (BTF_KIND_<name>). */
  kind: "DATASEC";
  /** Section size in bytes. */
  size: number;
  /** Variables in the section. */
  vars: { type: number; offset: number; size: number }[];
}

/** A floating point type. */
export interface BtfFloat extends BtfTypeCommon {
  /** The BTF kind, as its uapi name (BTF_KIND_<name>). */
  kind: "FLOAT";
  /** Size in bytes. */
  size: number;
}

/** A declaration tag (`__attribute__((btf_decl_tag("x")))`); the name is the tag. */
export interface BtfDeclTag extends BtfTypeCommon {
  /** The BTF kind, as its uapi name (BTF_KIND_<name>). */
  kind: "DECL_TAG";
  /** Tagged type id. */
  type: number;
  /** -1 for the type itself, else the member / parameter index. */
  componentIdx: number;
}

/** Any decoded BTF type. */
export type BtfType =
  | BtfVoid
  | BtfInt
  | BtfRef
  | BtfArray
  | BtfComposite
  | BtfEnum
  | BtfEnum64
  | BtfFwd
  | BtfFunc
  | BtfFuncProto
  | BtfVar
  | BtfDatasec
  | BtfFloat
  | BtfDeclTag;

/**
 * Words after the 3-word `btf_type` header: `EXTRA_FIXED[kind] +
 * EXTRA_PER_VLEN[kind] * vlen`. Tables, not a switch, because the index pass
 * runs this for every one of vmlinux's ~130k types. -1 marks unknown kinds.
 */
const EXTRA_FIXED = new Int8Array(32).fill(-1);
const EXTRA_PER_VLEN = new Uint8Array(32);
for (
  const [kind, fixed, perVlen] of [
    [BtfKind.INT, 1, 0],
    [BtfKind.PTR, 0, 0],
    [BtfKind.ARRAY, 3, 0],
    [BtfKind.STRUCT, 0, 3],
    [BtfKind.UNION, 0, 3],
    [BtfKind.ENUM, 0, 2],
    [BtfKind.FWD, 0, 0],
    [BtfKind.TYPEDEF, 0, 0],
    [BtfKind.VOLATILE, 0, 0],
    [BtfKind.CONST, 0, 0],
    [BtfKind.RESTRICT, 0, 0],
    [BtfKind.FUNC, 0, 0],
    [BtfKind.FUNC_PROTO, 0, 2],
    [BtfKind.VAR, 1, 0],
    [BtfKind.DATASEC, 0, 3],
    [BtfKind.FLOAT, 0, 0],
    [BtfKind.DECL_TAG, 1, 0],
    [BtfKind.TYPE_TAG, 0, 0],
    [BtfKind.ENUM64, 0, 3],
  ]
) {
  EXTRA_FIXED[kind] = fixed;
  EXTRA_PER_VLEN[kind] = perVlen;
}

/** Fixed part of the words following a type header, per kind (-1: unknown kind). */
export const BTF_EXTRA_FIXED: Readonly<Int8Array> = EXTRA_FIXED;
/** Words per vlen entry following a type header, per kind. */
export const BTF_EXTRA_PER_VLEN: Readonly<Uint8Array> = EXTRA_PER_VLEN;
