import { assertEquals } from "./assert.ts";
import { isValidOpcode, opcodeFamily, VALID_OPCODES } from "../../bytecode/valid.ts";

Deno.test("valid: 128 opcode bytes, by family", () => {
  // lddw 1, ld_abs/ld_ind/ldx_sx 3 each, ldx/st/stx/atomic 4 each, ALU and ALU64:
  // 12 binary ops x K/X + neg, end 2, bswap 1, JMP and JMP32: ja/gotol + 11 x K/X,
  // call, exit, may_goto.
  assertEquals(VALID_OPCODES.length, 1 + 9 + 16 + 2 * 25 + 3 + 2 * 23 + 3);
  assertEquals(new Set(VALID_OPCODES).size, VALID_OPCODES.length);
  const counts: Record<string, number> = {};
  for (const code of VALID_OPCODES) {
    const f = opcodeFamily(code)!;
    counts[f] = (counts[f] ?? 0) + 1;
  }
  assertEquals(counts, {
    lddw: 1,
    ld_abs: 3,
    ld_ind: 3,
    ldx_sx: 3,
    ldx: 4,
    st: 4,
    stx: 4,
    atomic: 4,
    alu_k: 24,
    alu_x: 24,
    neg: 2,
    end: 2,
    bswap: 1,
    ja: 1,
    gotol: 1,
    jmp_k: 22,
    jmp_x: 22,
    call: 1,
    exit: 1,
    may_goto: 1,
  });
});

Deno.test("valid: known opcodes and rejected look-alikes", () => {
  for (const code of [0x07, 0x0f, 0x18, 0x61, 0x7b, 0x85, 0x95, 0xbf, 0xdb, 0xd7, 0xe5, 0x06]) {
    assertEquals(isValidOpcode(code), true, `0x${code.toString(16)}`);
  }
  // 0x00: ld imm w; 0x8f: neg X; 0xdf: alu64 end X; 0x99: ldsx dw; 0x86/0x96: jmp32 call/exit;
  // 0xe6: jmp32 jcond; 0x38: ld abs dw; 0xf7: alu64 op 0xf.
  for (const code of [0x00, 0x8f, 0xdf, 0x99, 0x86, 0x96, 0xe6, 0x38, 0xf7, 0x7a + 0x80]) {
    assertEquals(isValidOpcode(code), false, `0x${code.toString(16)}`);
  }
  assertEquals(opcodeFamily(0x85), "call");
  assertEquals(opcodeFamily(0x8f), undefined);
});
