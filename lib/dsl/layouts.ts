/**
 * Where the DSL learns layouts: tracepoint record fields (tracefs) and kernel
 * struct fields and BTF tracepoint arguments (vmlinux BTF). Behind an
 * interface so tests can feed recorded layouts; the kernel one reads lazily,
 * so a tool that needs no BTF never parses it.
 */
import { Btf, tpBtfTarget } from "../btf/mod.ts";
import { readTracepointFormat, type TracepointFormat } from "../tracefs/mod.ts";

/** A struct field as the DSL needs it. */
export interface FieldInfo {
  offset: number;
  size: number;
  signed: boolean;
  isPointer: boolean;
  /** The struct a pointer field points to, when it does. */
  pointee?: string;
}

/** One argument of a BTF-typed tracepoint (the ctx is an array of u64). */
export interface TpBtfParam {
  name: string;
  isPointer: boolean;
  structName?: string;
}

export interface Layouts {
  tracepoint(category: string, name: string): TracepointFormat;
  structField(struct: string, path: string): FieldInfo;
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
