import { assertEquals } from "./assert.ts";
import assert from "node:assert/strict";
import {
  alu32Imm,
  alu32Reg,
  alu64Imm,
  alu64Reg,
  atomic,
  atomicAdd,
  bswap,
  call,
  callKfunc,
  callLocal,
  exit,
  gotol,
  ja,
  jmp32Imm,
  jmp32Reg,
  jmpImm,
  jmpReg,
  ldAbs,
  lddw,
  ldFunc,
  ldInd,
  ldMapFd,
  ldMapIdx,
  ldMapIdxValue,
  ldMapValue,
  ldx,
  ldxSx,
  loadAcquire,
  mayGoto,
  mov32Imm,
  mov32Reg,
  mov64Imm,
  mov64Reg,
  movSx32,
  movSx64,
  neg32,
  neg64,
  st,
  storeRelease,
  stx,
  toBe,
  toLe,
} from "../../bytecode/build.ts";
import { disassemble, disassembleOne, mapById, slotLabel } from "../../bytecode/disasm.ts";
import type { Insn } from "../../bytecode/insn.ts";
import { opcodeFamily, VALID_OPCODES } from "../../bytecode/valid.ts";

function check(cases: [Insn, string][]) {
  for (const [insn, text] of cases) assertEquals(disassembleOne(insn), text);
}

Deno.test("disasm: ALU64 and ALU (w registers), K and X sources", () => {
  check([
    [mov64Reg(6, 1), "(bf) r6 = r1"],
    [mov64Imm(1, -1), "(b7) r1 = -1"],
    [mov32Reg(0, 1), "(bc) w0 = w1"],
    [mov32Imm(2, 7), "(b4) w2 = 7"],
    [alu64Imm("add", 4, -16), "(07) r4 += -16"],
    [alu64Imm("rsh", 0, 32), "(77) r0 >>= 32"],
    [alu64Reg("sub", 1, 2), "(1f) r1 -= r2"],
    [alu64Reg("mul", 1, 2), "(2f) r1 *= r2"],
    [alu64Imm("div", 1, 10), "(37) r1 /= 10"],
    [alu64Reg("or", 3, 4), "(4f) r3 |= r4"],
    [alu64Imm("and", 3, 0xff), "(57) r3 &= 255"],
    [alu64Imm("lsh", 3, 3), "(67) r3 <<= 3"],
    [alu64Reg("mod", 3, 4), "(9f) r3 %= r4"],
    [alu64Reg("xor", 3, 3), "(af) r3 ^= r3"],
    [alu64Imm("arsh", 5, 1), "(c7) r5 s>>= 1"],
    [alu32Imm("add", 1, 1), "(04) w1 += 1"],
    [alu32Reg("lsh", 1, 2), "(6c) w1 <<= w2"],
    [alu32Imm("arsh", 1, 4), "(c4) w1 s>>= 4"],
    [neg64(3), "(87) r3 = -r3"],
    [neg32(3), "(84) w3 = -w3"],
  ]);
});

Deno.test("disasm: signed division, sign-extending moves, endianness and byte swaps", () => {
  check([
    [alu64Reg("sdiv", 1, 2), "(3f) r1 s/= r2"],
    [alu64Imm("smod", 1, 3), "(97) r1 s%= 3"],
    [alu32Reg("sdiv", 1, 2), "(3c) w1 s/= w2"],
    [movSx64(1, 2, 8), "(bf) r1 = (s8)r2"],
    [movSx64(1, 2, 16), "(bf) r1 = (s16)r2"],
    [movSx64(1, 2, 32), "(bf) r1 = (s32)r2"],
    [movSx32(1, 2, 16), "(bc) w1 = (s16)w2"],
    [toBe(1, 16), "(dc) r1 = be16 r1"],
    [toBe(2, 32), "(dc) r2 = be32 r2"],
    [toLe(1, 64), "(d4) r1 = le64 r1"],
    [bswap(3, 16), "(d7) r3 = bswap16 r3"],
    [bswap(3, 64), "(d7) r3 = bswap64 r3"],
    [{ code: 0xbf, dst: 1, src: 2, off: 1, imm: 1 }, "(bf) r1 = addr_space_cast(r2, 0, 1)"],
  ]);
});

Deno.test("disasm: loads and stores, sign-extending loads, legacy packet loads", () => {
  check([
    [ldx("u32", 1, 6, 8), "(61) r1 = *(u32 *)(r6 +8)"],
    [ldx("u64", 1, 10, -8), "(79) r1 = *(u64 *)(r10 -8)"],
    [ldx("u16", 1, 2, 0), "(69) r1 = *(u16 *)(r2 +0)"],
    [ldx("u8", 1, 2, 3), "(71) r1 = *(u8 *)(r2 +3)"],
    [ldxSx("u8", 1, 2, 3), "(91) r1 = *(s8 *)(r2 +3)"],
    [ldxSx("u16", 1, 2, 4), "(89) r1 = *(s16 *)(r2 +4)"],
    [ldxSx("u32", 1, 2, -4), "(81) r1 = *(s32 *)(r2 -4)"],
    [stx("u64", 10, 1, -16), "(7b) *(u64 *)(r10 -16) = r1"],
    [stx("u8", 10, 1, -1), "(73) *(u8 *)(r10 -1) = r1"],
    [st("u32", 10, -4, -7), "(62) *(u32 *)(r10 -4) = -7"],
    [st("u16", 1, 2, 0x1234), "(6a) *(u16 *)(r1 +2) = 4660"],
    [ldAbs("u8", 23), "(30) r0 = *(u8 *)skb[23]"],
    [ldInd("u32", 3, 4), "(40) r0 = *(u32 *)skb[r3 + 4]"],
  ]);
});

Deno.test("disasm: atomics in all their kernel spellings", () => {
  check([
    [atomicAdd("u64", 1, 2, 0), "(db) lock *(u64 *)(r1 +0) += r2"],
    [atomicAdd("u32", 1, 2, 8), "(c3) lock *(u32 *)(r1 +8) += r2"],
    [atomic("or", "u64", 1, 2, -8), "(db) lock *(u64 *)(r1 -8) |= r2"],
    [atomic("and", "u64", 1, 2, 0), "(db) lock *(u64 *)(r1 +0) &= r2"],
    [atomic("xor", "u32", 1, 2, 0), "(c3) lock *(u32 *)(r1 +0) ^= r2"],
    [atomic("add", "u64", 1, 2, 0, true), "(db) r2 = atomic64_fetch_add((u64 *)(r1 +0), r2)"],
    [atomic("xor", "u32", 1, 2, 4, true), "(c3) r2 = atomic_fetch_xor((u32 *)(r1 +4), r2)"],
    [atomic("xchg", "u64", 1, 3, 0), "(db) r3 = atomic64_xchg((u64 *)(r1 +0), r3)"],
    [atomic("cmpxchg", "u64", 1, 3, 0), "(db) r0 = atomic64_cmpxchg((u64 *)(r1 +0), r0, r3)"],
    [atomic("cmpxchg", "u32", 1, 3, 0), "(c3) r0 = atomic_cmpxchg((u32 *)(r1 +0), r0, r3)"],
    [loadAcquire("u64", 1, 2, 0), "(db) r1 = load_acquire((u64 *)(r2 +0))"],
    [storeRelease("u8", 1, 2, 0), "(d3) store_release((u8 *)(r1 +0), r2)"],
  ]);
  // An unknown atomic op prints the kernel's BUG marker, without opcode column.
  assertEquals(disassembleOne({ code: 0xdb, dst: 1, src: 2, off: 0, imm: 0x33 }), "BUG_db");
});

Deno.test("disasm: jumps, calls, exit", () => {
  check([
    [jmpImm("jgt", 1, 3, 2), "(25) if r1 > 0x3 goto pc+2"],
    [jmpImm("jeq", 0, 0, -5), "(15) if r0 == 0x0 goto pc-5"],
    [jmpImm("jne", 0, -1, 1), "(55) if r0 != 0xffffffff goto pc+1"],
    [jmpReg("jsge", 1, 2, 3), "(7d) if r1 s>= r2 goto pc+3"],
    [jmpReg("jset", 1, 2, 3), "(4d) if r1 & r2 goto pc+3"],
    [jmpImm("jlt", 1, 10, 3), "(a5) if r1 < 0xa goto pc+3"],
    [jmpImm("jle", 1, 10, 3), "(b5) if r1 <= 0xa goto pc+3"],
    [jmpReg("jslt", 1, 2, 3), "(cd) if r1 s< r2 goto pc+3"],
    [jmpImm("jsle", 1, 0, 3), "(d5) if r1 s<= 0x0 goto pc+3"],
    [jmpImm("jsgt", 1, 0, 3), "(65) if r1 s> 0x0 goto pc+3"],
    [jmpImm("jge", 1, 0, 3), "(35) if r1 >= 0x0 goto pc+3"],
    [jmp32Imm("jeq", 1, 5, 1), "(16) if w1 == 0x5 goto pc+1"],
    [jmp32Reg("jlt", 1, 2, -2), "(ae) if w1 < w2 goto pc-2"],
    [ja(4), "(05) goto pc+4"],
    [ja(-1), "(05) goto pc-1"],
    [gotol(100000), "(06) gotol pc+100000"],
    [mayGoto(3), "(e5) may_goto pc+3"],
    [call(14), "(85) call bpf_get_current_pid_tgid#14"],
    [call(1), "(85) call bpf_map_lookup_elem#1"],
    [call(9999), "(85) call unknown#9999"],
    [callLocal(5), "(85) call pc+5"],
    [callLocal(-7), "(85) call pc-7"],
    [callKfunc(123), "(85) call kernel-function#123"],
    [exit(), "(95) exit"],
  ]);
  assertEquals(
    disassembleOne(callKfunc(123), { kfuncName: () => "bpf_task_acquire" }),
    "(85) call bpf_task_acquire#123",
  );
  assertEquals(
    disassembleOne({ ...call(0), imm: 185232 }, { helperName: () => "bpf_get_current_pid_tgid" }),
    "(85) call bpf_get_current_pid_tgid#185232",
  );
});

Deno.test("disasm: 64-bit immediates and pseudo map loads", () => {
  check([
    [lddw(1, 0x1234567890abcdefn), "(18) r1 = 0x1234567890abcdef"],
    [lddw(1, -1n), "(18) r1 = 0xffffffffffffffff"],
    [lddw(2, 0n), "(18) r2 = 0x0"],
    [ldMapFd(7, 48), "(18) r7 = map[fd:48]"],
    [ldMapValue(1, 5, 16), "(18) r1 = map[fd:5][0]+16"],
    [ldMapIdx(1, 2), "(18) r1 = map[idx:2]"],
    [ldMapIdxValue(1, 2, 8), "(18) r1 = map[idx:2]+8"],
    [ldFunc(2, -47), "(18) r2 = subprog[-47]"],
  ]);
  assertEquals(disassembleOne(ldMapFd(7, 5), { mapName: mapById }), "(18) r7 = map[id:5]");
  assertEquals(
    disassembleOne(ldMapValue(1, 5, 0), { mapName: mapById }),
    "(18) r1 = map[id:5][0]+0",
  );
  assertEquals(
    disassembleOne(ldMapFd(7, 3), { mapName: (fd) => `counts(fd ${fd})` }),
    "(18) r7 = counts(fd 3)",
  );
});

Deno.test("disasm: slot numbering skips the second half of lddw, like bpftool", () => {
  const lines = disassemble([mov64Imm(0, 0), lddw(1, 5n), ldMapFd(2, 3), exit()]);
  assertEquals(lines, [
    "   0: (b7) r0 = 0",
    "   1: (18) r1 = 0x5",
    "   3: (18) r2 = map[fd:3]",
    "   5: (95) exit",
  ]);
  assertEquals(slotLabel(10), "  10: ");
  assertEquals(slotLabel(999), " 999: ");
  assertEquals(slotLabel(1000), " 1000: ");
  assertEquals(disassemble([exit()], { opcodes: false }), ["   0: exit"]);
});

Deno.test("disasm: every valid opcode prints without a BUG marker, under its opcode", () => {
  for (const code of VALID_OPCODES) {
    const family = opcodeFamily(code);
    const insn: Insn = { code, dst: 1, src: 2, off: 4, imm: 8 };
    if (family === "atomic") insn.imm = 0; // BPF_ADD
    if (family === "neg") insn.src = 0;
    if (family === "end" || family === "bswap") insn.imm = 16;
    if (family === "call") insn.src = 0;
    if (family === "may_goto") insn.src = 0;
    if (family === "lddw") insn.src = 0;
    const text = disassembleOne(insn);
    assert.ok(!text.includes("BUG") && !text.includes("(null)"), `${family}: ${text}`);
    assert.ok(text.startsWith(`(${code.toString(16).padStart(2, "0")}) `), text);
  }
});
