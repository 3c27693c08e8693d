/**
 * Event record schemas: C layout rules, decoding (short and padded data),
 * encoding, and the DSL steps they emit.
 */
import { deepEqual, equal as assertEquals, throws } from "node:assert/strict";
import { disassemble } from "../../../bytecode/disasm.ts";
import { ProgramBuilder } from "../../../lib/dsl/builder.ts";
import { r7, r8 } from "../../../lib/dsl/registers.ts";
import { bytes, char, defineSchema } from "../../../lib/dsl/schema.ts";

Deno.test("schema layout follows C: natural alignment, size rounded to the largest", () => {
  const s = defineSchema("mixed", {
    a: "u8",
    b: "u32",
    c: "u16",
    d: "u64",
    name: char(5),
    e: "s32",
    raw: bytes(3),
  });
  // struct { u8 a; u32 b; u16 c; u64 d; char name[5]; s32 e; u8 raw[3]; }
  deepEqual(s.fields.map((f) => [f.name, f.offset, f.size]), [
    ["a", 0, 1],
    ["b", 4, 4],
    ["c", 8, 2],
    ["d", 16, 8],
    ["name", 24, 5],
    ["e", 32, 4],
    ["raw", 36, 3],
  ]);
  assertEquals(s.size, 40);
  assertEquals(s.align, 8);
  assertEquals(s.offset("e"), 32);
  throws(() => s.offset("nope" as "a"), /schema mixed has no field 'nope'/);
});

Deno.test("schema of chars only has alignment 1 and no padding", () => {
  const s = defineSchema("s", { x: char(3), y: bytes(2) });
  assertEquals(s.size, 5);
  assertEquals(s.align, 1);
});

Deno.test("schema encode/decode round trip, signed and unsigned, all widths", () => {
  const s = defineSchema("all", {
    u8: "u8",
    s8: "s8",
    u16: "u16",
    s16: "s16",
    u32: "u32",
    s32: "s32",
    u64: "u64",
    s64: "s64",
    comm: char(16),
    blob: bytes(4),
  });
  const values = {
    u8: 255,
    s8: -2,
    u16: 65535,
    s16: -300,
    u32: 0xffffffff,
    s32: -2,
    u64: 0xffffffffffffffffn,
    s64: -5n,
    comm: "bash",
    blob: Uint8Array.of(1, 2, 3, 4),
  };
  deepEqual(s.decode(s.encode(values)), values);
});

Deno.test("schema decode: a C string stops at NUL; invalid UTF-8 is kept byte for byte", () => {
  const s = defineSchema("c", { comm: char(8) });
  const data = Uint8Array.of(0x61, 0xff, 0x1b, 0, 0x7a, 0x7a, 0x7a, 0x7a);
  assertEquals(s.decode(data).comm, "a\udcff\x1b");
  // No NUL at all: the whole field.
  assertEquals(s.decode(new TextEncoder().encode("abcdefgh")).comm, "abcdefgh");
});

Deno.test("schema decode: a short record (variable tail) and a padded one", () => {
  const s = defineSchema("v", { n: "u32", count: "u32", args: bytes(64) });
  const full = s.encode({ n: 7, count: 3, args: new TextEncoder().encode("ab\0c\0") });
  const short = s.decode(full.subarray(0, 8 + 5));
  assertEquals(short.n, 7);
  deepEqual([...short.args], [0x61, 0x62, 0, 0x63, 0]);
  // Shorter than a scalar field: it reads as 0 rather than past the data.
  assertEquals(s.decode(full.subarray(0, 6)).count, 0);
  // Perf buffers pad records: extra bytes after the record are ignored.
  const padded = new Uint8Array(s.size + 4);
  padded.set(full);
  assertEquals(s.decode(padded).args.length, 64);
});

Deno.test("schema decode reads at the data's own offset in a larger buffer", () => {
  const s = defineSchema("o", { a: "u32", b: "u16" });
  const buf = new Uint8Array(64);
  buf.set(s.encode({ a: 42, b: 7 }), 24);
  deepEqual(s.decode(buf.subarray(24, 24 + s.size)), { a: 42, b: 7 });
  // The decoder caches one DataView per buffer; another buffer must not reuse it.
  deepEqual(s.decode(s.encode({ a: 1, b: 2 })), { a: 1, b: 2 });
});

Deno.test("schema DSL steps: stores at field offsets, comm and string reads into fields", () => {
  const s = defineSchema("ev", { pid: "u32", ts: "u64", comm: char(16), path: char(64) });
  const p = new ProgramBuilder("t", "tracepoint", { kind: "raw_tracepoint", name: "x" });
  s.store(p, r7, "pid", r8);
  s.store(p, r7, "ts", 0);
  s.load(p, r8, r7, "ts");
  s.currentComm(p, r7, "comm");
  s.readString(p, r7, "path", r8);
  s.readString(p, r7, "path", r8, "kernel");
  deepEqual(disassemble(p.build().insns).map((l) => l.replace(/^\s*\d+: /, "")), [
    "(63) *(u32 *)(r7 +0) = r8",
    "(7a) *(u64 *)(r7 +8) = 0",
    "(79) r8 = *(u64 *)(r7 +8)",
    "(bf) r1 = r7",
    "(07) r1 += 16",
    "(b7) r2 = 16",
    "(85) call bpf_get_current_comm#16",
    "(bf) r3 = r8",
    "(bf) r1 = r7",
    "(07) r1 += 32",
    "(b7) r2 = 64",
    "(85) call bpf_probe_read_user_str#114",
    "(bf) r3 = r8",
    "(bf) r1 = r7",
    "(07) r1 += 32",
    "(b7) r2 = 64",
    "(85) call bpf_probe_read_kernel_str#115",
  ]);
  throws(() => s.store(p, r7, "comm", 0), /ev.comm is an array/);
  throws(() => s.currentComm(p, r7, "pid"), /ev.pid is not an array/);
});

Deno.test("schema toC renders the struct for documentation", () => {
  const s = defineSchema("ev", { pid: "u32", comm: char(16) });
  assertEquals(s.toC(), "struct ev {\n\t__u32 pid;\n\tchar comm[16];\n}; /* 20 bytes */");
});

Deno.test("schema rejects bad array lengths", () => {
  throws(() => char(0), /positive integer/);
  throws(() => bytes(1.5), /positive integer/);
});
