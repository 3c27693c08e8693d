/**
 * Event records declared once. A schema gives the record's byte layout (C
 * struct rules: each field at its natural alignment, the size rounded up to
 * the largest alignment), the DSL steps that fill a record in BPF, and the
 * TypeScript decoder that reads it back in user space, so the two sides can
 * never disagree about an offset.
 *
 * @example
 * ```ts
 * import { char, defineSchema } from "./schema.ts";
 * const openEvent = defineSchema("open_event", {
 *   pid: "u32",
 *   ret: "s32",
 *   comm: char(16),
 *   path: char(256),
 * });
 * openEvent.offset("comm"); // 8
 * // BPF:  openEvent.store(p, r7, "pid", r1); openEvent.currentComm(p, r7, "comm");
 * // user: const e = openEvent.decode(bytes); e.comm (string), e.ret (number)
 * ```
 *
 * @module
 */
import type { SizeName } from "../../bytecode/opcodes.ts";
import { decodeCString } from "../format/escape.ts";
import type { ProgramBuilder } from "./builder.ts";
import { type Operand, r1, r2, r3, type Reg } from "./registers.ts";

/** Integer field types, as in C: u8..u64 unsigned, s8..s64 signed. */
export type ScalarType = "u8" | "u16" | "u32" | "u64" | "s8" | "s16" | "s32" | "s64";

/** `char name[length]`: a NUL-terminated string; decodes to a string. */
export interface CharArray {
  /** Tells a char array from a byte array. */
  readonly kind: "char";
  /** Bytes, the terminating NUL included. */
  readonly length: number;
}

/** `u8 name[length]`: raw bytes; decodes to a Uint8Array (a copy). */
export interface ByteArray {
  /** Tells a byte array from a char array. */
  readonly kind: "bytes";
  /** Bytes. */
  readonly length: number;
}

/** What a schema field can be. */
export type FieldType = ScalarType | CharArray | ByteArray;

/** `char[length]`. */
export function char(length: number): CharArray {
  checkLength(length);
  return { kind: "char", length };
}

/** `u8[length]`. */
export function bytes(length: number): ByteArray {
  checkLength(length);
  return { kind: "bytes", length };
}

function checkLength(length: number): void {
  if (!Number.isInteger(length) || length <= 0) {
    throw new Error(`array length must be a positive integer, got ${length}`);
  }
}

/** The TypeScript type a field decodes to. */
export type FieldValue<F extends FieldType> = F extends "u64" | "s64" ? bigint
  : F extends ScalarType ? number
  : F extends CharArray ? string
  : Uint8Array;

/** A decoded record: one property per field. */
export type Decoded<S extends Record<string, FieldType>> = {
  -readonly [K in keyof S]: FieldValue<S[K]>;
};

/** Where a field lives in the record. */
export interface FieldLayout {
  /** Field name, the property it decodes to. */
  readonly name: string;
  /** Field type, as declared. */
  readonly type: FieldType;
  /** Byte offset from the record's start (C alignment applied). */
  readonly offset: number;
  /** Bytes the field takes. */
  readonly size: number;
}

const SCALAR_SIZE: Record<ScalarType, 1 | 2 | 4 | 8> = {
  u8: 1,
  u16: 2,
  u32: 4,
  u64: 8,
  s8: 1,
  s16: 2,
  s32: 4,
  s64: 8,
};

/** The BPF load/store size of each scalar width. */
const SIZE_NAME: Record<1 | 2 | 4 | 8, SizeName> = { 1: "u8", 2: "u16", 4: "u32", 8: "u64" };

type Reader = (
  out: Record<string, unknown>,
  view: DataView,
  bytes: Uint8Array,
  at: number,
  end: number,
) => void;

/** An event record layout. Build one with {@link defineSchema}. */
export class Schema<S extends Record<string, FieldType>> {
  /** Size of the whole record in bytes (C `sizeof`, padding included). */
  readonly size: number;
  /** Alignment of the record (its largest field's). */
  readonly align: number;
  /** Fields in declaration order. */
  readonly fields: readonly FieldLayout[];
  readonly #byName = new Map<string, FieldLayout>();
  readonly #readers: Reader[];
  #lastBuffer: ArrayBufferLike | undefined;
  #lastView: DataView | undefined;
  #lastBytes: Uint8Array | undefined;

  /** Lays out `spec`'s fields in order, C-aligned; {@link defineSchema} is the usual way in. */
  constructor(readonly name: string, spec: S) {
    let offset = 0;
    let align = 1;
    const fields: FieldLayout[] = [];
    for (const [fieldName, type] of Object.entries(spec)) {
      const size = typeof type === "string" ? SCALAR_SIZE[type] : type.length;
      const fieldAlign = typeof type === "string" ? size : 1;
      if (size === undefined) throw new Error(`${name}.${fieldName}: unknown type '${type}'`);
      offset = alignUp(offset, fieldAlign);
      align = Math.max(align, fieldAlign);
      const layout = Object.freeze({ name: fieldName, type, offset, size });
      fields.push(layout);
      this.#byName.set(fieldName, layout);
      offset += size;
    }
    this.size = alignUp(offset, align);
    this.align = align;
    this.fields = Object.freeze(fields);
    this.#readers = fields.map(fieldReader);
  }

  /** The field's layout; throws naming the schema when there is no such field. */
  field(name: keyof S & string): FieldLayout {
    const f = this.#byName.get(name);
    if (!f) throw new Error(`schema ${this.name} has no field '${name}'`);
    return f;
  }

  /** Byte offset of a field. */
  offset(name: keyof S & string): number {
    return this.field(name).offset;
  }

  // --- BPF side: filling a record at `base` (a register pointing at it) ------

  /** *(base + field) = src, for a scalar field. */
  store(p: ProgramBuilder, base: Reg, name: keyof S & string, src: Operand): void {
    const f = this.#scalar(name);
    p.store(SIZE_NAME[f.size as 1 | 2 | 4 | 8], base, f.offset, src);
  }

  /** dst = *(base + field), for a scalar field (zero-extended; sign it yourself). */
  load(p: ProgramBuilder, dst: Reg, base: Reg, name: keyof S & string): void {
    const f = this.#scalar(name);
    p.load(dst, SIZE_NAME[f.size as 1 | 2 | 4 | 8], base, f.offset);
  }

  /** dst = base + offset of the field (a pointer into the record). */
  fieldPtr(p: ProgramBuilder, dst: Reg, base: Reg, name: keyof S & string): void {
    p.mov(dst, base).add(dst, this.offset(name));
  }

  /** bpf_get_current_comm(base + field, length) into a char field. Clobbers r0-r5. */
  currentComm(p: ProgramBuilder, base: Reg, name: keyof S & string): void {
    const f = this.#array(name);
    this.fieldPtr(p, r1, base, name);
    p.mov(r2, f.size).call("get_current_comm");
  }

  /**
   * Copies a NUL-terminated string from `src` (a register holding a user or
   * kernel address) into a char field with bpf_probe_read_{user,kernel}_str.
   * r0 = the length copied including the NUL, or a negative error. Clobbers r0-r5;
   * `src` must not be r1 or r2.
   */
  readString(
    p: ProgramBuilder,
    base: Reg,
    name: keyof S & string,
    src: Reg,
    space: "user" | "kernel" = "user",
  ): void {
    const f = this.#array(name);
    if (src.n === 1 || src.n === 2) throw new Error("readString: src must not be r1 or r2");
    p.mov(r3, src);
    this.fieldPtr(p, r1, base, name);
    p.mov(r2, f.size).call(`probe_read_${space}_str`);
  }

  /**
   * Copies `size` bytes (default: the whole field) from `src` into a field
   * with bpf_probe_read_{user,kernel}. Clobbers r0-r5; `src` must not be r1 or r2.
   */
  readBytes(
    p: ProgramBuilder,
    base: Reg,
    name: keyof S & string,
    src: Reg,
    space: "user" | "kernel" = "user",
    size?: number,
  ): void {
    const f = this.field(name);
    const n = size ?? f.size;
    if (n > f.size) throw new Error(`${this.name}.${name}: ${n} bytes do not fit in ${f.size}`);
    if (src.n === 1 || src.n === 2) throw new Error("readBytes: src must not be r1 or r2");
    p.mov(r3, src);
    this.fieldPtr(p, r1, base, name);
    p.mov(r2, n).call(`probe_read_${space}`);
  }

  #scalar(name: keyof S & string): FieldLayout {
    const f = this.field(name);
    if (typeof f.type !== "string") throw new Error(`${this.name}.${name} is an array`);
    return f;
  }

  #array(name: keyof S & string): FieldLayout {
    const f = this.field(name);
    if (typeof f.type === "string") throw new Error(`${this.name}.${name} is not an array`);
    return f;
  }

  // --- user side ---------------------------------------------------------------

  /**
   * Decodes one record. `data` may be shorter than {@link size} when the BPF
   * side sent only a prefix (a variable-length tail): array fields are cut at
   * the end of the data, scalar fields past it decode as 0. Longer data (perf
   * buffer padding) is fine.
   */
  decode(data: Uint8Array): Decoded<S> {
    if (data.buffer !== this.#lastBuffer) {
      this.#lastBuffer = data.buffer;
      this.#lastView = new DataView(data.buffer);
      this.#lastBytes = new Uint8Array(data.buffer);
    }
    const out: Record<string, unknown> = {};
    const at = data.byteOffset;
    const end = at + data.byteLength;
    for (const read of this.#readers) read(out, this.#lastView!, this.#lastBytes!, at, end);
    return out as Decoded<S>;
  }

  /** The record's bytes for these values (missing fields are zero): for tests and map writes. */
  encode(values: Partial<Decoded<S>>): Uint8Array<ArrayBuffer> {
    const buf = new Uint8Array(this.size);
    const view = new DataView(buf.buffer);
    for (const f of this.fields) {
      const v = (values as Record<string, unknown>)[f.name];
      if (v === undefined) continue;
      if (typeof f.type === "string") writeScalar(view, f, v as number | bigint);
      else {
        const src = typeof v === "string" ? new TextEncoder().encode(v) : v as Uint8Array;
        buf.set(src.subarray(0, f.size), f.offset);
      }
    }
    return buf;
  }

  /** The C declaration of the record, for documentation and --dump. */
  toC(): string {
    const lines = this.fields.map((f) =>
      typeof f.type === "string"
        ? `\t${cType(f.type)} ${f.name};`
        : `\t${f.type.kind === "char" ? "char" : "__u8"} ${f.name}[${f.type.length}];`
    );
    return `struct ${this.name} {\n${lines.join("\n")}\n}; /* ${this.size} bytes */`;
  }
}

/**
 * Declares an event record layout.
 *
 * @example
 * ```ts
 * import { char, defineSchema } from "./schema.ts";
 * const e = defineSchema("event", { ts: "u64", pid: "u32", comm: char(16) });
 * e.size; // 32 (8 + 4 + 16, rounded up to 8)
 * ```
 */
export function defineSchema<const S extends Record<string, FieldType>>(
  name: string,
  spec: S,
): Schema<S> {
  return new Schema(name, spec);
}

function alignUp(n: number, align: number): number {
  return Math.ceil(n / align) * align;
}

function cType(t: ScalarType): string {
  return `__${t}`;
}

function fieldReader(f: FieldLayout): Reader {
  const { name, offset, size, type } = f;
  if (typeof type !== "string") {
    if (type.kind === "char") {
      return (out, _v, bytes, at, end) => {
        out[name] = cString(bytes, Math.min(at + offset, end), Math.min(at + offset + size, end));
      };
    }
    return (out, _v, bytes, at, end) => {
      out[name] = bytes.slice(Math.min(at + offset, end), Math.min(at + offset + size, end));
    };
  }
  const fits = (at: number, end: number) => at + offset + size <= end;
  const get: (v: DataView, at: number) => number | bigint = {
    u8: (v: DataView, at: number) => v.getUint8(at),
    s8: (v: DataView, at: number) => v.getInt8(at),
    u16: (v: DataView, at: number) => v.getUint16(at, true),
    s16: (v: DataView, at: number) => v.getInt16(at, true),
    u32: (v: DataView, at: number) => v.getUint32(at, true),
    s32: (v: DataView, at: number) => v.getInt32(at, true),
    u64: (v: DataView, at: number) => v.getBigUint64(at, true),
    s64: (v: DataView, at: number) => v.getBigInt64(at, true),
  }[type];
  const zero = size === 8 ? 0n : 0;
  return (out, v, _b, at, end) => (out[name] = fits(at, end) ? get(v, at + offset) : zero);
}

/**
 * The C string in bytes[from, to): up to the first NUL. Plain ASCII, the
 * common case for names and paths, is built directly (about twice as fast
 * as a TextDecoder call); anything else goes through decodeCString.
 */
function cString(bytes: Uint8Array, from: number, to: number): string {
  let i = from;
  for (; i < to; i++) {
    const b = bytes[i];
    if (b === 0) break;
    if (b >= 0x80) return decodeCString(bytes.subarray(from, to));
  }
  return i - from <= 4096
    ? String.fromCharCode.apply(null, bytes.subarray(from, i) as unknown as number[])
    : decodeCString(bytes.subarray(from, i));
}

function writeScalar(view: DataView, f: FieldLayout, v: number | bigint): void {
  const at = f.offset;
  switch (f.type as ScalarType) {
    case "u8":
      return view.setUint8(at, Number(v));
    case "s8":
      return view.setInt8(at, Number(v));
    case "u16":
      return view.setUint16(at, Number(v), true);
    case "s16":
      return view.setInt16(at, Number(v), true);
    case "u32":
      return view.setUint32(at, Number(v), true);
    case "s32":
      return view.setInt32(at, Number(v), true);
    case "u64":
      return view.setBigUint64(at, BigInt(v), true);
    case "s64":
      return view.setBigInt64(at, BigInt(v), true);
  }
}
