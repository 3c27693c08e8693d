/** Parser edge cases on small blobs built with BtfWriter (no kernel needed). */
import assert from "node:assert/strict";
import { Btf } from "../../../lib/btf/mod.ts";
import { BtfWriter } from "./btf_writer.ts";

function smallBlob(): Uint8Array {
  const w = new BtfWriter();
  const u32 = w.addInt("unsigned int", 4);
  const s = w.addStruct("s", [{ name: "a", typeId: u32 }, { name: "b", typeId: u32 }]);
  w.addPtr(s);
  w.addEnum("e", [{ name: "E_MINUS", value: -1 }, { name: "E_ONE", value: 1 }], true);
  return w.build();
}

/** Converts a little-endian blob to big-endian: header fields and type words swap, strings do not. */
function toBigEndian(le: Uint8Array): Uint8Array {
  const out = le.slice();
  const src = new DataView(le.buffer, le.byteOffset, le.byteLength);
  const dst = new DataView(out.buffer);
  dst.setUint16(0, src.getUint16(0, true), false);
  for (let off = 4; off < 24; off += 4) dst.setUint32(off, src.getUint32(off, true), false);
  const typeStart = 24 + src.getUint32(8, true);
  const typeEnd = typeStart + src.getUint32(12, true);
  for (let off = typeStart; off < typeEnd; off += 4) {
    dst.setUint32(off, src.getUint32(off, true), false);
  }
  return out;
}

Deno.test("parser: header errors", () => {
  assert.throws(() => Btf.fromBytes(new Uint8Array(10)), /blob too short/);
  assert.throws(() => Btf.fromBytes(new Uint8Array(24)), /bad magic 0x0/);
  const blob = smallBlob();
  const truncated = blob.subarray(0, blob.length - 4);
  assert.throws(() => Btf.fromBytes(truncated), /sections outside the blob/);
});

Deno.test("parser: unknown kinds are reported when reached", () => {
  const blob = smallBlob();
  const view = new DataView(blob.buffer);
  // Type 1's info word: set kind 31.
  view.setUint32(24 + 4, (31 << 24) >>> 0, true);
  const btf = Btf.fromBytes(blob);
  assert.throws(() => btf.type(1), /type 1 has unknown kind 31/);
});

Deno.test("parser: big-endian blobs read the same", () => {
  const le = Btf.fromBytes(smallBlob());
  const be = Btf.fromBytes(toBigEndian(smallBlob()));
  assert.equal(be.typeCount, le.typeCount);
  for (let id = 1; id <= le.typeCount; id++) assert.deepEqual(be.type(id), le.type(id));
  assert.equal(be.field("s", "b").offset, 4);
});

Deno.test("parser: signed enum values, id range errors", () => {
  const btf = Btf.fromBytes(smallBlob());
  const e = btf.type(btf.findId("e", "ENUM")!);
  assert.equal(e.kind, "ENUM");
  if (e.kind === "ENUM") assert.deepEqual(e.values.map((v) => v.value), [-1, 1]);
  assert.throws(() => btf.type(99), /type id 99 out of range \(1\.\.4\)/);
  assert.equal(btf.findId("s"), 2);
  assert.equal(btf.findId("s", "UNION"), undefined);
});

Deno.test("layout: legacy INT-encoded bitfields and bitfields across units", () => {
  const w = new BtfWriter();
  const u32 = w.addInt("unsigned int", 4);
  const u3 = w.addInt("u3", 4, { bits: 3 });
  w.addStruct("legacy", [{ name: "x", typeId: u3, bitOffset: 5 }], 8);
  w.addStruct("packed", [
    { name: "lo", typeId: u32, bitOffset: 0, bitfieldSize: 30 },
    { name: "hi", typeId: u32, bitOffset: 30, bitfieldSize: 4 },
  ], 5);
  const btf = Btf.fromBytes(w.build());
  const x = btf.field("legacy", "x");
  assert.deepEqual([x.offset, x.size, x.bitOffset, x.bitSize], [0, 4, 5, 3]);
  // 'hi' occupies bits 30..33: no aligned u32 holds it, so load 2 bytes from byte 3.
  const hi = btf.field("packed", "hi");
  assert.deepEqual([hi.offset, hi.size, hi.bitOffset, hi.bitSize], [3, 2, 6, 4]);
});

Deno.test("findIdByPrefix answers as findId, in any order of look-ups", () => {
  const w = new BtfWriter();
  const int = w.addInt("int", 4, { signed: true });
  const proto = w.addFuncProto(int, [{ name: "x", typeId: int }]);
  w.addFunc("__traceiter_a", proto);
  w.addTypedef("__traceiter_b", int); // same name, other kind
  w.addFunc("__traceiter_b", proto);
  w.addFunc("__traceiter_a", proto); // a later duplicate
  w.addFunc("__trace", proto); // shorter than the prefix
  w.addFunc("__traceiter_", proto); // just the prefix
  w.addFunc("x__traceiter_c", proto);
  w.addFunc("__traceiter_c", proto);
  const blob = w.build();
  const names = [
    "__traceiter_a",
    "__traceiter_b",
    "__traceiter_c",
    "__traceiter_",
    "__traceiter_zz",
  ];
  const expected = Btf.fromBytes(blob);
  const orders = [names, names.toReversed(), [names[2], names[0], names[4], names[1], names[3]]];
  for (const order of orders) {
    const btf = Btf.fromBytes(blob);
    for (const name of order) {
      assert.equal(btf.findIdByPrefix(name, "FUNC", "__traceiter_"), expected.findId(name, "FUNC"));
      assert.equal(
        btf.findIdByPrefix(name, "TYPEDEF", "__traceiter_"),
        expected.findId(name, "TYPEDEF"),
      );
    }
    // a name outside the family is an ordinary look-up
    assert.equal(btf.findIdByPrefix("__trace", "FUNC", "__traceiter_"), 7);
  }
});
