/**
 * BTF: struct layouts, function and tracepoint prototypes from the running
 * kernel's `/sys/kernel/btf/vmlinux`.
 *
 * @example
 * ```ts
 * import { Btf, tpBtfTarget } from "./mod.ts";
 * const btf = Btf.vmlinux();
 * const tgid = btf.field("task_struct", "tgid"); // { offset, size: 4, signed: true, ... }
 * const sw = tpBtfTarget("sched_switch"); // attach_btf_id and typed arguments
 * ```
 *
 * @module
 */

export { Btf } from "./btf.ts";
export type { FieldLayout } from "./field_layout.ts";
export {
  BTF_HEADER_SIZE,
  BTF_MAGIC,
  type BtfArray,
  type BtfComposite,
  type BtfDatasec,
  type BtfDeclTag,
  type BtfEnum,
  type BtfEnum64,
  type BtfFloat,
  type BtfFunc,
  BtfFuncLinkage,
  type BtfFuncProto,
  type BtfFwd,
  type BtfInt,
  BtfIntEncoding,
  BtfKind,
  type BtfKindName,
  type BtfMember,
  type BtfParam,
  type BtfRef,
  type BtfType,
  type BtfTypeCommon,
  type BtfVar,
  type BtfVoid,
} from "./kinds.ts";
export { type TpBtfParam, type TpBtfTarget, tpBtfTarget } from "./tp_btf.ts";
