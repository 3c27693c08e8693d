import { assertEquals, assertThrows } from "./assert.ts";
import {
  alu32Imm,
  alu64Imm,
  alu64Reg,
  atomic,
  atomicAdd,
  call,
  callLocal,
  exit,
  ja,
  jmp32Reg,
  jmpImm,
  lddw,
  ldMapFd,
  ldMapValue,
  ldx,
  makeInsn,
  mov32Reg,
  mov64Imm,
  mov64Reg,
  st,
  stx,
} from "../../bytecode/build.ts";

Deno.test("build: moves and ALU ops produce the kernel's opcode bytes", () => {
  assertEquals(mov64Reg(6, 1), { code: 0xbf, dst: 6, src: 1, off: 0, imm: 0 });
  assertEquals(mov64Imm(1, 0), { code: 0xb7, dst: 1, src: 0, off: 0, imm: 0 });
  assertEquals(mov32Reg(0, 1), { code: 0xbc, dst: 0, src: 1, off: 0, imm: 0 });
  assertEquals(alu64Imm("rsh", 0, 32), { code: 0x77, dst: 0, src: 0, off: 0, imm: 32 });
  assertEquals(alu64Imm("add", 4, -16), { code: 0x07, dst: 4, src: 0, off: 0, imm: -16 });
  assertEquals(alu64Reg("xor", 1, 2), { code: 0xaf, dst: 1, src: 2, off: 0, imm: 0 });
  assertEquals(alu32Imm("and", 3, 0xffffffff), { code: 0x54, dst: 3, src: 0, off: 0, imm: -1 });
  assertEquals(alu64Reg("neg", 5, 7), { code: 0x87, dst: 5, src: 0, off: 0, imm: 0 });
  assertEquals(alu64Reg("sdiv", 1, 2), { code: 0x3f, dst: 1, src: 2, off: 1, imm: 0 });
});

Deno.test("build: memory access, atomics, jumps and calls", () => {
  assertEquals(stx("u64", 10, 1, -16), { code: 0x7b, dst: 10, src: 1, off: -16, imm: 0 });
  assertEquals(ldx("u32", 1, 6, 8), { code: 0x61, dst: 1, src: 6, off: 8, imm: 0 });
  assertEquals(st("u8", 10, -1, 7), { code: 0x72, dst: 10, src: 0, off: -1, imm: 7 });
  assertEquals(atomicAdd("u64", 1, 2, 0), { code: 0xdb, dst: 1, src: 2, off: 0, imm: 0 });
  assertEquals(atomic("add", "u32", 1, 2, 4, true), {
    code: 0xc3,
    dst: 1,
    src: 2,
    off: 4,
    imm: 1,
  });
  assertEquals(atomic("cmpxchg", "u64", 1, 2, 0).imm, 0xf1);
  assertEquals(jmpImm("jgt", 1, 3, 2), { code: 0x25, dst: 1, src: 0, off: 2, imm: 3 });
  assertEquals(jmp32Reg("jne", 1, 2, -3), { code: 0x5e, dst: 1, src: 2, off: -3, imm: 0 });
  assertEquals(ja(-1), { code: 0x05, dst: 0, src: 0, off: -1, imm: 0 });
  assertEquals(call(14), { code: 0x85, dst: 0, src: 0, off: 0, imm: 14 });
  assertEquals(callLocal(5), { code: 0x85, dst: 0, src: 1, off: 0, imm: 5 });
  assertEquals(exit(), { code: 0x95, dst: 0, src: 0, off: 0, imm: 0 });
});

Deno.test("build: lddw splits 64-bit values and pseudo map loads", () => {
  assertEquals(lddw(1, 0x1234567890abcdefn), {
    code: 0x18,
    dst: 1,
    src: 0,
    off: 0,
    imm: 0x90abcdef | 0,
    imm2: 0x12345678,
  });
  assertEquals(lddw(2, -1n), { code: 0x18, dst: 2, src: 0, off: 0, imm: -1, imm2: -1 });
  assertEquals(lddw(2, 0xffffffffffffffffn).imm2, -1);
  assertEquals(ldMapFd(7, 0x30), { code: 0x18, dst: 7, src: 1, off: 0, imm: 0x30, imm2: 0 });
  assertEquals(ldMapValue(1, 5, 24), { code: 0x18, dst: 1, src: 2, off: 0, imm: 5, imm2: 24 });
});

Deno.test("build: bad operands are rejected where they are written", () => {
  assertThrows(() => mov64Reg(11, 1), RangeError);
  assertThrows(() => ldx("u64", 1, 10, 0x8000), RangeError);
  assertThrows(() => mov64Imm(1, 2 ** 32), RangeError);
  assertThrows(() => atomicAdd("u16" as "u32", 1, 2, 0), RangeError);
  assertThrows(() => lddw(1, 1n << 64n), RangeError);
  assertThrows(() => makeInsn(0x100, 0, 0, 0, 0), RangeError);
  assertThrows(() => makeInsn(0xb7, 0, 0, 0, 0, 5), RangeError, "imm2");
});

Deno.test("build: makeInsn is the raw escape hatch, lddw included", () => {
  assertEquals(makeInsn(0xb7, 1, 0, 0, 0xffffffff), {
    code: 0xb7,
    dst: 1,
    src: 0,
    off: 0,
    imm: -1,
  });
  assertEquals(makeInsn(0x18, 1, 0, 0, 1, 2), lddw(1, (2n << 32n) | 1n));
  assertEquals(makeInsn(0x18, 1, 1, 0, 3), { code: 0x18, dst: 1, src: 1, off: 0, imm: 3, imm2: 0 });
});
