/**
 * The program builder: instructions with named registers, labels and
 * structured control flow instead of hand-counted offsets, maps by
 * declaration, helpers by name. Every instruction remembers the tool line
 * that emitted it (`origin`), so the verifier can point at it.
 */
import * as B from "../../bytecode/build.ts";
import { helperByName } from "../../bytecode/helpers.ts";
import type { Insn } from "../../bytecode/insn.ts";
import type { AluOp, JmpOp, SizeName } from "../../bytecode/opcodes.ts";
import type { ProgTypeName } from "../../bytecode/prog_types.ts";
import type { MapDef } from "./maps.ts";
import { captureOrigin, patched, withOrigin } from "./origin.ts";
import { type Operand, r10, Reg } from "./registers.ts";

/** Where a program attaches. */
export type AttachTarget =
  | { kind: "tracepoint"; category: string; name: string; id: number }
  | { kind: "tp_btf"; name: string; btfId: number }
  | { kind: "raw_tracepoint"; name: string }
  | { kind: "perf_event"; frequency?: number; period?: number; cpus?: number[]; pid?: number }
  | { kind: "kprobe"; func: string; retprobe: boolean }
  | {
    kind: "uprobe";
    path: string;
    offset: number;
    retprobe: boolean;
    pid?: number;
    /** A USDT semaphore's file offset: the kernel raises it while attached (ref_ctr_offset). */
    refCtrOffset?: number;
  };

/** A finished program, ready for the verifier and the loader. */
export interface BuiltProgram {
  /** Program name as the kernel shows it (bpftool prog); 15 characters kept. */
  name: string;
  /** Kernel program type: decides the context and which helpers may be called. */
  type: ProgTypeName;
  /** Instructions, jumps resolved; map loads hold a placeholder until the loader sets the fd. */
  insns: Insn[];
  /** Where the loader attaches the program. */
  attach: AttachTarget;
  /** Maps this program refers to, in first-use order. */
  maps: MapDef[];
  /** Logical instruction indexes of `lddw` map loads, and which map each loads. */
  mapRefs: { index: number; map: MapDef }[];
  /** Bytes of context the program may read (tracepoint record size, or 8 x tp_btf args). */
  ctxSize?: number;
  /**
   * The program stores kernel pointers in maps on purpose (as hash keys, e.g.
   * a request pointer from issue to completion) and never shows them.
   * Our verifier rejects pointer leaks unless a program says so.
   */
  allowPointerLeaks?: boolean;
}

/** A comparison, as the tool writes it. `"&"` is "any bit set" (jset). */
export type Cond = "==" | "!=" | ">" | ">=" | "<" | "<=" | "s>" | "s>=" | "s<" | "s<=" | "&";

const COND_OP: Record<Cond, JmpOp> = {
  "==": "jeq",
  "!=": "jne",
  ">": "jgt",
  ">=": "jge",
  "<": "jlt",
  "<=": "jle",
  "s>": "jsgt",
  "s>=": "jsge",
  "s<": "jslt",
  "s<=": "jsle",
  "&": "jset",
};

const NEGATED: Partial<Record<Cond, Cond>> = {
  "==": "!=",
  "!=": "==",
  ">": "<=",
  "<=": ">",
  ">=": "<",
  "<": ">=",
  "s>": "s<=",
  "s<=": "s>",
  "s>=": "s<",
  "s<": "s>=",
};

/** A jump target; bound to a position with `bind()`. */
export class Label {
  /** Instruction index (lddw counting once) after `bind()`; undefined before. */
  position?: number;
  /** `name` appears in errors about the label (bound twice, never bound). */
  constructor(readonly name: string) {}
}

interface PendingJump {
  index: number;
  label: Label;
}

const STACK_SIZE = 512;

/** Builds one program. See lib/dsl/program.ts for the tool-facing macros. */
export class ProgramBuilder {
  /** Instructions emitted so far; jump offsets are filled in by `build()`. */
  readonly insns: Insn[] = [];
  readonly #jumps: PendingJump[] = [];
  readonly #mapRefs: { index: number; map: MapDef }[] = [];
  #stackUsed = 0;
  #labels = 0;
  /** See BuiltProgram.allowPointerLeaks. */
  allowPointerLeaks = false;

  /** Tools get one from tracepoint(), tpBtf(), rawTracepoint() or uprobe() instead. */
  constructor(
    readonly name: string,
    readonly type: ProgTypeName,
    readonly attach: AttachTarget,
    readonly ctxSize?: number,
  ) {}

  /** Appends raw instructions: the escape hatch for library users. */
  emit(...insns: Insn[]): this {
    const origin = captureOrigin();
    for (const insn of insns) this.insns.push(withOrigin({ ...insn }, origin));
    return this;
  }

  // --- moves and arithmetic -------------------------------------------------

  /** dst = src (64-bit). */
  mov(dst: Reg, src: Operand): this {
    return this.emit(src instanceof Reg ? B.mov64Reg(dst.n, src.n) : B.mov64Imm(dst.n, src));
  }

  /** dst = src (32-bit, zero-extends). */
  mov32(dst: Reg, src: Operand): this {
    return this.emit(src instanceof Reg ? B.mov32Reg(dst.n, src.n) : B.mov32Imm(dst.n, src));
  }

  /** dst op= src (64-bit). */
  alu(op: AluOp, dst: Reg, src: Operand): this {
    return this.emit(
      src instanceof Reg ? B.alu64Reg(op, dst.n, src.n) : B.alu64Imm(op, dst.n, src),
    );
  }

  /** dst += src (64-bit). */
  add(dst: Reg, src: Operand): this {
    return this.alu("add", dst, src);
  }
  /** dst -= src (64-bit). */
  sub(dst: Reg, src: Operand): this {
    return this.alu("sub", dst, src);
  }
  /** dst /= src (64-bit, unsigned; division by zero gives 0). */
  div(dst: Reg, src: Operand): this {
    return this.alu("div", dst, src);
  }
  /** dst >>= src (64-bit, logical: zeros shift in). */
  rsh(dst: Reg, src: Operand): this {
    return this.alu("rsh", dst, src);
  }
  /** dst <<= src (64-bit). */
  lsh(dst: Reg, src: Operand): this {
    return this.alu("lsh", dst, src);
  }
  /** dst &= src (64-bit). */
  and(dst: Reg, src: Operand): this {
    return this.alu("and", dst, src);
  }

  /** dst = a 64-bit constant (lddw). */
  mov64(dst: Reg, value: bigint): this {
    return this.emit(B.lddw(dst.n, value));
  }

  // --- memory ---------------------------------------------------------------

  /** dst = *(size *)(base + off). */
  load(dst: Reg, size: SizeName, base: Reg, off: number): this {
    return this.emit(B.ldx(size, dst.n, base.n, off));
  }

  /** *(size *)(base + off) = src. */
  store(size: SizeName, base: Reg, off: number, src: Operand): this {
    return this.emit(
      src instanceof Reg ? B.stx(size, base.n, src.n, off) : B.st(size, base.n, off, src),
    );
  }

  /** lock *(size *)(base + off) += src. */
  atomicAdd(size: "u32" | "u64", base: Reg, off: number, src: Reg): this {
    return this.emit(B.atomicAdd(size, base.n, src.n, off));
  }

  /** Reserves `bytes` of stack (8-aligned); returns the offset from r10 (negative). */
  stack(bytes: number): number {
    this.#stackUsed += Math.ceil(bytes / 8) * 8;
    if (this.#stackUsed > STACK_SIZE) {
      throw new Error(`${this.name}: stack use ${this.#stackUsed} exceeds ${STACK_SIZE} bytes`);
    }
    return -this.#stackUsed;
  }

  /** dst = r10 + off (a pointer to the stack slot at `off`). */
  stackPtr(dst: Reg, off: number): this {
    return this.mov(dst, r10).add(dst, off);
  }

  /** Zeroes `bytes` of stack starting at `off` (8-aligned). */
  zeroStack(off: number, bytes: number): this {
    for (let i = 0; i < bytes; i += 8) this.store("u64", r10, off + i, 0);
    return this;
  }

  // --- maps and helpers -----------------------------------------------------

  /** dst = the map (a pseudo map-fd load the loader patches). */
  loadMap(dst: Reg, map: MapDef): this {
    this.#mapRefs.push({ index: this.insns.length, map });
    return this.emit(B.ldMapFd(dst.n, 0));
  }

  /** Calls a helper by name (`"ktime_get_ns"` or `"bpf_ktime_get_ns"`); result in r0. */
  call(helper: string): this {
    const proto = helperByName(helper);
    if (!proto) throw new Error(`unknown BPF helper '${helper}'`);
    return this.emit(B.call(proto.id));
  }

  /** r0 = imm; exit. */
  ret(imm = 0): this {
    return this.emit(B.mov64Imm(0, imm), B.exit());
  }

  // --- control flow ---------------------------------------------------------

  /** A new label; `bind()` it where it should point. */
  label(name = `L${this.#labels++}`): Label {
    return new Label(name);
  }

  /** Binds a label to the next instruction. */
  bind(label: Label): this {
    if (label.position !== undefined) throw new Error(`label ${label.name} bound twice`);
    label.position = this.insns.length;
    return this;
  }

  /** Unconditional jump. */
  goto(label: Label): this {
    this.#jumps.push({ index: this.insns.length, label });
    return this.emit(B.ja(0));
  }

  /** if (a cond b) goto label (64-bit compare). */
  jumpIf(a: Reg, cond: Cond, b: Operand, label: Label): this {
    this.#jumps.push({ index: this.insns.length, label });
    const op = COND_OP[cond];
    return this.emit(b instanceof Reg ? B.jmpReg(op, a.n, b.n, 0) : B.jmpImm(op, a.n, b, 0));
  }

  /** if (a cond b) { then } else { otherwise } */
  if(a: Reg, cond: Cond, b: Operand, then: () => void, otherwise?: () => void): this {
    const skip = this.label();
    const negated = NEGATED[cond];
    if (negated) {
      this.jumpIf(a, negated, b, skip);
    } else {
      const taken = this.label();
      this.jumpIf(a, cond, b, taken).goto(skip).bind(taken);
    }
    then();
    if (otherwise) {
      const end = this.label();
      this.goto(end).bind(skip);
      otherwise();
      this.bind(end);
    } else {
      this.bind(skip);
    }
    return this;
  }

  /** Returns from the program (r0 = imm) when `a cond b`. */
  returnIf(a: Reg, cond: Cond, b: Operand, imm = 0): this {
    return this.if(a, cond, b, () => this.ret(imm));
  }

  /** Resolves labels and returns the finished program. */
  build(): BuiltProgram {
    const slots: number[] = [];
    let slot = 0;
    for (const insn of this.insns) {
      slots.push(slot);
      slot += insn.code === 0x18 ? 2 : 1;
    }
    slots.push(slot);
    const insns = this.insns.slice();
    for (const { index, label } of this.#jumps) {
      if (label.position === undefined) {
        throw new Error(`${this.name}: label ${label.name} is never bound`);
      }
      const off = slots[label.position] - slots[index] - 1;
      insns[index] = patched(insns[index], { off });
    }
    const maps = [...new Set(this.#mapRefs.map((r) => r.map))];
    return {
      name: this.name,
      type: this.type,
      insns,
      attach: this.attach,
      maps,
      mapRefs: this.#mapRefs.slice(),
      ctxSize: this.ctxSize,
      allowPointerLeaks: this.allowPointerLeaks || undefined,
    };
  }
}
