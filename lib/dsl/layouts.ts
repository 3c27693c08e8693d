/**
 * Where the DSL learns layouts: tracepoint record fields (tracefs) and kernel
 * struct fields and BTF tracepoint arguments (vmlinux BTF). Behind an
 * interface so tests can feed recorded layouts; the kernel one reads lazily,
 * so a tool that needs no BTF never parses it.
 */
import { Btf } from "../btf/btf.ts";
import { tpBtfTarget } from "../btf/tp_btf.ts";
import { readTracepointFormat, type TracepointFormat } from "../tracefs/format.ts";

/** A struct field as the DSL needs it. */
export interface FieldInfo {
  /** Byte offset from the start of the outer struct (nested members followed). */
  offset: number;
  /** Bytes to load. */
  size: number;
  /** Whether the value is a signed integer (loads sign-extend). */
  signed: boolean;
  /** Whether the field is a pointer (typedefs resolved). */
  isPointer: boolean;
  /** The struct a pointer field points to, when it does. */
  pointee?: string;
}

/** One argument of a BTF-typed tracepoint (the ctx is an array of u64). */
export interface TpBtfParam {
  /** Argument name from the kernel's prototype, or `arg<N>` when unknown. */
  name: string;
  /** Whether the argument is a pointer (typedefs resolved). */
  isPointer: boolean;
  /** For pointers to structs/unions: the struct name, to read its fields. */
  structName?: string;
}

/** Layout sources: the running kernel ({@link kernelLayouts}) or recorded ones in tests. */
export interface Layouts {
  /** A tracefs tracepoint's record format. */
  tracepoint(category: string, name: string): TracepointFormat;
  /** A field of a kernel struct; `path` may be dotted ("se.vruntime"). */
  structField(struct: string, path: string): FieldInfo;
  /** A BTF tracepoint's attach id (`btf_trace_<event>` typedef) and its arguments. */
  tpBtf(event: string): { typedefId: number; params: TpBtfParam[] };
}

/** Layouts of the running kernel. */
export const kernelLayouts: Layouts = {
  tracepoint: (category, name) => readTracepointFormat(category, name),
  structField(struct, path) {
    const f = Btf.vmlinux().field(struct, path);
    return {
      offset: f.offset,
      size: f.size,
      signed: f.signed,
      isPointer: f.isPointer,
      pointee: f.pointee,
    };
  },
  tpBtf(event) {
    const t = tpBtfTarget(event);
    return {
      typedefId: t.typedefId,
      params: t.params.map((p) => ({
        name: p.name,
        isPointer: p.isPointer,
        structName: p.structName,
      })),
    };
  },
};
