/**
 * The wire format of BPF programs, as `struct bpf_insn` lays it out on a
 * little-endian machine (x86_64, arm64):
 *
 * ```
 * byte 0     opcode
 * byte 1     dst_reg (low nibble) | src_reg (high nibble)
 * bytes 2-3  off  (signed 16-bit, little endian)
 * bytes 4-7  imm  (signed 32-bit, little endian)
 * ```
 *
 * `lddw` (opcode 0x18) takes two such slots; the second carries only the
 * upper immediate, all its other fields are zero.
 *
 * @example
 * ```ts
 * import { encode } from "./encode.ts";
 * encode([{ code: 0x85, dst: 0, src: 0, off: 0, imm: 14 }]); // 85 00 00 00 0e 00 00 00
 * ```
 *
 * @module
 */

import type { Insn } from "./insn.ts";
import { BPF_LDDW } from "./opcodes.ts";

/** Bytes per instruction slot. */
export const SLOT_BYTES = 8;

/** Number of 8-byte slots an instruction occupies: 2 for `lddw`, 1 otherwise. */
export function slotsOf(insn: Insn): 1 | 2 {
  return insn.code === BPF_LDDW ? 2 : 1;
}

/** Total slots of a program (what the kernel calls `insn_cnt`). */
export function slotCount(insns: readonly Insn[]): number {
  let n = 0;
  for (const insn of insns) n += slotsOf(insn);
  return n;
}

/** The slot index at which each instruction starts (`pc` as the kernel counts it). */
export function slotOffsets(insns: readonly Insn[]): number[] {
  const out = new Array<number>(insns.length);
  let slot = 0;
  for (let i = 0; i < insns.length; i++) {
    out[i] = slot;
    slot += slotsOf(insns[i]);
  }
  return out;
}

function where(insn: Insn, index: number): string {
  return `instruction ${index}${insn.origin ? ` (${insn.origin})` : ""}`;
}

function checkField(insn: Insn, index: number, name: string, v: number, lo: number, hi: number) {
  if (!Number.isInteger(v) || v < lo || v > hi) {
    throw new RangeError(`${where(insn, index)}: ${name} ${v} is outside ${lo}..${hi}`);
  }
}

function writeSlot(
  view: DataView,
  at: number,
  code: number,
  regs: number,
  off: number,
  imm: number,
) {
  view.setUint8(at, code);
  view.setUint8(at + 1, regs);
  view.setInt16(at + 2, off, true);
  view.setInt32(at + 4, imm | 0, true);
}

/**
 * Encodes instructions into the bytes `bpf(BPF_PROG_LOAD)` expects.
 * Immediates may be given signed or as unsigned 32-bit values.
 * Throws a RangeError naming the instruction when a field does not fit.
 */
export function encode(insns: readonly Insn[]): Uint8Array {
  const bytes = new Uint8Array(slotCount(insns) * SLOT_BYTES);
  const view = new DataView(bytes.buffer);
  let at = 0;
  insns.forEach((insn, i) => {
    checkField(insn, i, "opcode", insn.code, 0, 0xff);
    checkField(insn, i, "dst", insn.dst, 0, 15);
    checkField(insn, i, "src", insn.src, 0, 15);
    checkField(insn, i, "off", insn.off, -0x8000, 0x7fff);
    checkField(insn, i, "imm", insn.imm, -0x80000000, 0xffffffff);
    writeSlot(view, at, insn.code, (insn.src << 4) | insn.dst, insn.off, insn.imm);
    at += SLOT_BYTES;
    if (insn.code === BPF_LDDW) {
      const imm2 = insn.imm2 ?? 0;
      checkField(insn, i, "imm2", imm2, -0x80000000, 0xffffffff);
      writeSlot(view, at, 0, 0, 0, imm2);
      at += SLOT_BYTES;
    }
  });
  return bytes;
}

/**
 * Decodes program bytes (from our encoder, an ELF section or the kernel's
 * `xlated` dump) into instructions. `off` and `imm` come back signed.
 * Throws on a length that is not whole slots, a truncated `lddw`, or an
 * `lddw` whose second slot is not blank apart from its immediate.
 */
export function decode(bytes: Uint8Array): Insn[] {
  if (bytes.length % SLOT_BYTES !== 0) {
    throw new RangeError(
      `BPF program is ${bytes.length} bytes, not a multiple of ${SLOT_BYTES}: ` +
        `the last instruction (slot ${Math.floor(bytes.length / SLOT_BYTES)}) is truncated`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const insns: Insn[] = [];
  for (let at = 0; at < bytes.length; at += SLOT_BYTES) {
    const code = view.getUint8(at);
    const regs = view.getUint8(at + 1);
    const insn: Insn = {
      code,
      dst: regs & 0x0f,
      src: regs >> 4,
      off: view.getInt16(at + 2, true),
      imm: view.getInt32(at + 4, true),
    };
    if (code === BPF_LDDW) {
      const slot = at / SLOT_BYTES;
      if (at + 2 * SLOT_BYTES > bytes.length) {
        throw new RangeError(`lddw at slot ${slot} is truncated: its second slot is missing`);
      }
      const next = at + SLOT_BYTES;
      if (view.getUint8(next) !== 0 || view.getUint8(next + 1) !== 0 || view.getInt16(next + 2)) {
        throw new RangeError(
          `lddw at slot ${slot}: its second slot must be blank apart from the immediate`,
        );
      }
      insn.imm2 = view.getInt32(next + 4, true);
      at = next;
    }
    insns.push(insn);
  }
  return insns;
}
