import { assertEquals, assertThrows } from "./assert.ts";
import { decode, encode, slotCount, slotOffsets } from "../../bytecode/encode.ts";
import { call, exit, lddw, ldMapFd, mov64Imm } from "../../bytecode/build.ts";
import type { Insn } from "../../bytecode/insn.ts";
import { VALID_OPCODES } from "../../bytecode/valid.ts";

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");
}

Deno.test("encode: call bpf_get_current_pid_tgid is 85 00 00 00 0e 00 00 00", () => {
  assertEquals(hex(encode([call(14)])), "85 00 00 00 0e 00 00 00");
});

Deno.test("encode: registers, negative offsets and immediates are little endian", () => {
  const insn: Insn = { code: 0x7b, dst: 10, src: 1, off: -16, imm: -2 };
  assertEquals(hex(encode([insn])), "7b 1a f0 ff fe ff ff ff");
  // Unsigned immediates are accepted and come back signed.
  const bytes = encode([{ code: 0xb7, dst: 1, src: 0, off: 0, imm: 0xffffffff }]);
  assertEquals(hex(bytes), "b7 01 00 00 ff ff ff ff");
  assertEquals(decode(bytes)[0].imm, -1);
});

Deno.test("encode: lddw takes two slots with imm2 in the second", () => {
  const bytes = encode([lddw(3, 0x1122334455667788n), exit()]);
  assertEquals(
    hex(bytes),
    "18 03 00 00 88 77 66 55 00 00 00 00 44 33 22 11 95 00 00 00 00 00 00 00",
  );
  assertEquals(hex(encode([ldMapFd(7, 0x30)])), "18 17 00 00 30 00 00 00 00 00 00 00 00 00 00 00");
  const back = decode(bytes);
  assertEquals(back.length, 2);
  assertEquals(back[0], { code: 0x18, dst: 3, src: 0, off: 0, imm: 0x55667788, imm2: 0x11223344 });
});

Deno.test("encode: slot helpers count lddw twice", () => {
  const prog = [mov64Imm(0, 0), ldMapFd(1, 3), lddw(2, 5n), call(1), exit()];
  assertEquals(slotCount(prog), 7);
  assertEquals(slotOffsets(prog), [0, 1, 3, 5, 6]);
  assertEquals(slotCount([]), 0);
});

Deno.test("encode/decode: round trip for every valid opcode with varied fields", () => {
  const fields = [
    { dst: 0, src: 0, off: 0, imm: 0 },
    { dst: 10, src: 1, off: -16, imm: -1 },
    { dst: 3, src: 9, off: 0x7fff, imm: 0x7fffffff },
    { dst: 7, src: 2, off: -0x8000, imm: -0x80000000 },
    { dst: 5, src: 6, off: 1234, imm: -123456 },
  ];
  const prog: Insn[] = [];
  for (const code of VALID_OPCODES) {
    for (const f of fields) {
      const insn: Insn = { code, ...f };
      if (code === 0x18) {
        insn.off = 0;
        insn.imm2 = -f.imm - 1;
      }
      prog.push(insn);
    }
  }
  const bytes = encode(prog);
  assertEquals(bytes.length, slotCount(prog) * 8);
  assertEquals(decode(bytes), prog);
  assertEquals(encode(decode(bytes)), bytes);
  // One at a time too, so a failure names the opcode.
  for (const insn of prog) {
    assertEquals(decode(encode([insn])), [insn], `opcode 0x${insn.code.toString(16)}`);
  }
});

Deno.test("decode: any well-formed byte string survives decode/encode unchanged", () => {
  let seed = 12345;
  const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 16 & 0xff;
  for (let round = 0; round < 200; round++) {
    const bytes = new Uint8Array(8 * 16);
    for (let i = 0; i < bytes.length; i++) bytes[i] = rand();
    for (let s = 0; s < 16; s++) {
      if (bytes[s * 8] === 0x18) bytes[s * 8] = 0x19; // keep lddw out of random data
    }
    assertEquals(encode(decode(bytes)), bytes);
  }
});

Deno.test("decode: truncated input gives clear errors", () => {
  assertThrows(() => decode(new Uint8Array(7)), RangeError, "truncated");
  assertThrows(() => decode(new Uint8Array([0x18, 1, 0, 0, 0, 0, 0, 0])), RangeError, "lddw");
  const bad = encode([lddw(1, 1n)]);
  bad[8] = 0x95;
  assertThrows(() => decode(bad), RangeError, "second slot");
  assertEquals(decode(new Uint8Array(0)), []);
});

Deno.test("decode: works on a subarray view", () => {
  const bytes = encode([mov64Imm(1, 5), exit()]);
  const padded = new Uint8Array(24);
  padded.set(bytes, 8);
  assertEquals(decode(padded.subarray(8)), decode(bytes));
});

Deno.test("encode: out-of-range fields name the instruction", () => {
  assertThrows(
    () => encode([exit(), { code: 0xb7, dst: 16, src: 0, off: 0, imm: 0, origin: "x.ts:3" }]),
    RangeError,
    "instruction 1 (x.ts:3)",
  );
  assertThrows(() => encode([{ code: 0x05, dst: 0, src: 0, off: 40000, imm: 0 }]), RangeError);
});
