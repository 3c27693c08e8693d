/**
 * The bytecode printed in the talk that seeds this project
 * (slide "Now you have BPF bytecode!", copied into tests/fixtures/talk_bytecode_slide.txt):
 * a tracing program that sends pid_tgid to a perf buffer.
 *
 * The slide's first copy cuts four lines to 7 bytes; its second copy ("(2)")
 * has them whole but shows `85 05 ...` on line 4 where the first copy and
 * DESIGN.md have `85 00 00 00 0e 00 00 00`. The canonical vector is the first
 * copy completed from the second.
 */
import { assertEquals } from "./assert.ts";
import assert from "node:assert/strict";
import { decode, encode, slotCount } from "../../bytecode/encode.ts";
import { disassemble, mapById } from "../../bytecode/disasm.ts";
import { alu64Imm, call, exit, ldMapFd, mov64Imm, mov64Reg, stx } from "../../bytecode/build.ts";

const CANONICAL = `
bf 16 00 00 00 00 00 00
b7 01 00 00 00 00 00 00
7b 1a f0 ff 00 00 00 00
85 00 00 00 0e 00 00 00
77 00 00 00 20 00 00 00
7b 0a f8 ff 00 00 00 00
18 17 00 00 30 00 00 00 00 00 00 00 00 00 00 00
85 00 00 00 08 00 00 00
bf a4 00 00 00 00 00 00
07 04 00 00 f0 ff ff ff
bf 61 00 00 00 00 00 00
bf 72 00 00 00 00 00 00
bf 03 00 00 00 00 00 00
b7 05 00 00 10 00 00 00
85 00 00 00 19 00 00 00
b7 00 00 00 00 00 00 00
95 00 00 00 00 00 00 00
`;

const EXPECTED = [
  "   0: (bf) r6 = r1",
  "   1: (b7) r1 = 0",
  "   2: (7b) *(u64 *)(r10 -16) = r1",
  "   3: (85) call bpf_get_current_pid_tgid#14",
  "   4: (77) r0 >>= 32",
  "   5: (7b) *(u64 *)(r10 -8) = r0",
  "   6: (18) r7 = map[fd:48]",
  "   8: (85) call bpf_get_smp_processor_id#8",
  "   9: (bf) r4 = r10",
  "  10: (07) r4 += -16",
  "  11: (bf) r1 = r6",
  "  12: (bf) r2 = r7",
  "  13: (bf) r3 = r0",
  "  14: (b7) r5 = 16",
  "  15: (85) call bpf_perf_event_output#25",
  "  16: (b7) r0 = 0",
  "  17: (95) exit",
];

function parseHexLines(text: string): string[] {
  return text.trim().split("\n").map((l) => l.trim()).filter((l) => /^[0-9a-f]{2}( |$)/.test(l));
}

function bytesOf(lines: string[]): Uint8Array {
  return new Uint8Array(lines.join(" ").split(/\s+/).map((h) => parseInt(h, 16)));
}

Deno.test("seed: the canonical vector is the talk's first copy completed from its second", async () => {
  const talk = await Deno.readTextFile(
    new URL("../fixtures/talk_bytecode_slide.txt", import.meta.url),
  );
  const slides = talk.split("# Now you have BPF bytecode!");
  assertEquals(slides.length, 3, "the slide and its (2) copy");
  const first = parseHexLines(slides[1].split("```")[1]);
  const second = parseHexLines(slides[2].split("```")[1]);
  assertEquals(first.length, 17);
  assertEquals(second.length, 17);
  const canonical = parseHexLines(CANONICAL);
  for (let i = 0; i < 17; i++) {
    if (first[i] === canonical[i]) continue;
    // Truncated in the first copy: a prefix of the canonical line, which the second copy has.
    assert.ok(canonical[i].startsWith(first[i]), `line ${i + 1}: ${first[i]}`);
    assertEquals(second[i], canonical[i], `line ${i + 1} completed from the second copy`);
  }
  // The one disagreement: the second copy's src nibble on line 4.
  assertEquals(second[3], "85 05 00 00 0e 00 00 00");
  assertEquals(canonical[3], "85 00 00 00 0e 00 00 00");
});

Deno.test("seed: decodes to 17 instructions in 18 slots and disassembles like the kernel", () => {
  const bytes = bytesOf(parseHexLines(CANONICAL));
  assertEquals(bytes.length, 18 * 8);
  const insns = decode(bytes);
  assertEquals(insns.length, 17);
  assertEquals(slotCount(insns), 18);
  assertEquals(disassemble(insns), EXPECTED);
  assertEquals(
    disassemble(insns, { mapName: mapById })[6],
    "   6: (18) r7 = map[id:48]",
  );
  assertEquals(
    disassemble(insns, { opcodes: false })[2],
    "   2: *(u64 *)(r10 -16) = r1",
  );
});

Deno.test("seed: re-encodes to the same bytes, and the builders produce them too", () => {
  const bytes = bytesOf(parseHexLines(CANONICAL));
  assertEquals(encode(decode(bytes)), bytes);
  const built = [
    mov64Reg(6, 1),
    mov64Imm(1, 0),
    stx("u64", 10, 1, -16),
    call(14),
    alu64Imm("rsh", 0, 32),
    stx("u64", 10, 0, -8),
    ldMapFd(7, 0x30),
    call(8),
    mov64Reg(4, 10),
    alu64Imm("add", 4, -16),
    mov64Reg(1, 6),
    mov64Reg(2, 7),
    mov64Reg(3, 0),
    mov64Imm(5, 16),
    call(25),
    mov64Imm(0, 0),
    exit(),
  ];
  assertEquals(encode(built), bytes);
});
