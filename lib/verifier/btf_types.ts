/**
 * Kernel type information for the verifier, from vmlinux BTF: what a read
 * through a typed pointer yields (the kernel's `btf_struct_walk`, in a
 * slightly stricter form), and the argument types of a tp_btf tracepoint.
 * Pure: it takes an already loaded `Btf`.
 *
 * @module
 */

import type { Btf } from "../btf/btf.ts";
import type { TpBtfTarget } from "../btf/tp_btf.ts";
import type { BtfMemberAccess, CtxArg, KernelTypes } from "./types.ts";
import { tpArgNullness } from "./tp_btf_nulls.ts";

/** A `KernelTypes` backed by BTF (struct ids are cached per name). */
export function kernelTypesFromBtf(btf: Btf): KernelTypes {
  const ids = new Map<string, number | undefined>();
  const accesses = new Map<string, BtfMemberAccess>();
  const idOf = (name: string) => {
    if (!ids.has(name)) ids.set(name, btf.findId(name, "STRUCT") ?? btf.findId(name, "UNION"));
    return ids.get(name);
  };
  return {
    structSize(name) {
      const id = idOf(name);
      return id === undefined ? undefined : btf.sizeOf(id);
    },
    access(name, offset, size) {
      const key = `${name}:${offset}:${size}`;
      let a = accesses.get(key);
      if (!a) {
        const id = idOf(name);
        a = id === undefined
          ? { kind: "error", message: `no struct ${name} in the kernel's BTF` }
          : walk(btf, id, offset, size);
        accesses.set(key, a);
      }
      return a;
    },
  };
}

/**
 * The tp_btf context arguments of tracepoint `name`, as the verifier needs
 * them: the kernel's list of arguments that may be NULL (checked before use)
 * or an error pointer (a plain number) is applied.
 */
export function ctxArgsFromTpBtf(btf: Btf, target: TpBtfTarget, name: string): CtxArg[] {
  const bare = name.includes(":") ? name.slice(name.indexOf(":") + 1) : name;
  return target.params.map((p, i): CtxArg => {
    const t = btf.type(btf.resolve(p.typeId));
    if (t.kind !== "PTR") return { kind: "scalar" };
    const pointee = pointeeStruct(btf, t.type);
    if (!pointee) return { kind: "scalar" };
    const { nullable, maybeErr } = tpArgNullness(bare, i);
    if (maybeErr) return { kind: "scalar" };
    return nullable
      ? { kind: "pointer", struct: pointee, nullable }
      : { kind: "pointer", struct: pointee };
  });
}

/**
 * The name of the struct a pointer points to, or undefined when it is not a
 * (named) struct or carries a `__user`/`__percpu` tag (the kernel refuses
 * direct reads through those).
 */
function pointeeStruct(btf: Btf, id: number): string | undefined {
  for (let hops = 0; hops < 16; hops++) {
    const t = btf.type(id);
    if (t.kind === "TYPE_TAG") {
      if (t.name === "user" || t.name === "percpu") return undefined;
      id = t.type;
      continue;
    }
    if (
      t.kind === "TYPEDEF" || t.kind === "CONST" || t.kind === "VOLATILE" || t.kind === "RESTRICT"
    ) {
      id = t.type;
      continue;
    }
    if ((t.kind === "STRUCT" || t.kind === "UNION") && t.name) return t.name;
    return undefined;
  }
  return undefined;
}

function walk(btf: Btf, structId: number, off: number, size: number): BtfMemberAccess {
  let id = structId;
  // Inside a union of several members the kernel stops checking member ends.
  let inUnion = false;
  for (let depth = 0; depth < 32; depth++) {
    const t = btf.type(btf.resolve(id));
    if (t.kind !== "STRUCT" && t.kind !== "UNION") {
      return { kind: "error", message: `type ${btf.typeToString(id)} is not a struct` };
    }
    const tname = `${t.kind === "UNION" ? "union" : "struct"} ${t.name || "(anonymous)"}`;
    if (t.kind === "UNION" && t.members.length !== 1) inUnion = true;
    if (off + size > t.size) {
      return {
        kind: "error",
        message: `access beyond ${tname} (${t.size} bytes) at offset ${off} size ${size}`,
      };
    }
    let next: { id: number; off: number } | undefined;
    for (let k = 0; k < t.members.length; k++) {
      const m = t.members[k];
      let moff = Math.floor(m.bitOffset / 8);
      if (off + size <= moff) break;
      if (m.bitfieldSize) {
        const endByte = Math.ceil((m.bitOffset + m.bitfieldSize) / 8);
        if (off <= moff && endByte <= off + size) return { kind: "scalar" };
        continue;
      }
      if (off < moff) break;
      let mid = btf.resolve(m.type);
      let mt = btf.type(mid);
      let msize: number;
      try {
        msize = btf.sizeOf(mid);
      } catch {
        return { kind: "error", message: `field ${m.name} of ${tname} has no size` };
      }
      const trueEnd = moff + msize;
      if (off >= trueEnd) continue;
      if (mt.kind === "ARRAY") {
        if (msize === 0) continue;
        // Multi-dimensional arrays are walked as one flat array of elements.
        let elem = mt.type;
        while (btf.type(btf.resolve(elem)).kind === "ARRAY") {
          elem = (btf.type(btf.resolve(elem)) as { type: number }).type;
        }
        mid = btf.resolve(elem);
        mt = btf.type(mid);
        const esize = btf.sizeOf(mid);
        moff += Math.floor((off - moff) / esize) * esize;
        msize = esize;
      }
      if (mt.kind === "STRUCT" || mt.kind === "UNION") {
        next = { id: mid, off: off - moff };
        break;
      }
      if (mt.kind === "PTR") {
        if (msize !== size || off !== moff) {
          return {
            kind: "error",
            message:
              `pointer field ${m.name} of ${tname} must be read whole (8 bytes at offset ${moff})`,
          };
        }
        const s = pointeeStruct(btf, mt.type);
        return s
          ? { kind: "pointer", struct: s, field: `${t.name}.${m.name}` }
          : { kind: "untrusted-mem" };
      }
      if (off + size > trueEnd && !inUnion) {
        return {
          kind: "error",
          message:
            `access beyond the end of field ${m.name} of ${tname} (offset ${off} size ${size})`,
        };
      }
      return { kind: "scalar" };
    }
    if (!next) return { kind: "error", message: `${tname} has no field at offset ${off}` };
    id = next.id;
    off = next.off;
  }
  return { kind: "error", message: "struct nesting too deep" };
}
