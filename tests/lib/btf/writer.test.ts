import assert from "node:assert/strict";
import { Btf, BtfFuncLinkage } from "../../../lib/btf/mod.ts";
import { BtfWriter } from "./btf_writer.ts";
import { runSync } from "../../support/process.ts";
import { kernelTest } from "../../support/kernel.ts";

function sampleWriter() {
  const w = new BtfWriter();
  const int = w.addInt("int", 4, { signed: true });
  const u64 = w.addInt("unsigned long long", 8);
  const char = w.addInt("char", 1, { char: true });
  const u32 = w.addInt("unsigned int", 4);
  const comm = w.addArray(char, u32, 16);
  const value = w.addStruct("task_value", [
    { name: "start_ns", typeId: u64 },
    { name: "pid", typeId: int },
    { name: "comm", typeId: comm },
  ]);
  const ptr = w.addPtr(value);
  const typedef = w.addTypedef("task_value_t", value);
  const flags = w.addStruct("flags", [
    { name: "a", typeId: u32, bitOffset: 0, bitfieldSize: 3 },
    { name: "b", typeId: u32, bitOffset: 3, bitfieldSize: 5 },
    { name: "c", typeId: u64, bitOffset: 64 },
  ]);
  const voidPtr = w.addPtr(0);
  const proto = w.addFuncProto(int, [{ name: "ctx", typeId: voidPtr }]);
  const func = w.addFunc("handler", proto, BtfFuncLinkage.GLOBAL);
  const anon = w.addStruct("", [{ name: "x", typeId: int }, { name: "y", typeId: int }]);
  const outer = w.addStruct("outer", [{ name: "tag", typeId: char }, { name: "", typeId: anon }]);
  return {
    w,
    ids: {
      int,
      u64,
      char,
      u32,
      comm,
      value,
      ptr,
      typedef,
      flags,
      voidPtr,
      proto,
      func,
      anon,
      outer,
    },
  };
}

Deno.test("writer: round trip through the parser", () => {
  const { w, ids } = sampleWriter();
  const btf = Btf.fromBytes(w.build());
  assert.equal(btf.typeCount, w.typeCount);
  assert.deepEqual(btf.type(ids.int), {
    id: ids.int,
    kind: "INT",
    name: "int",
    size: 4,
    signed: true,
    char: false,
    bool: false,
    bitOffset: 0,
    bits: 32,
  });
  assert.deepEqual(btf.type(ids.comm), {
    id: ids.comm,
    kind: "ARRAY",
    name: "",
    type: ids.char,
    indexType: ids.u32,
    nelems: 16,
  });
  const value = btf.type(ids.value);
  assert.equal(value.kind, "STRUCT");
  if (value.kind !== "STRUCT") return;
  assert.equal(value.size, 32); // 8 + 4 + 16, aligned to 8
  assert.deepEqual(value.members.map((m) => [m.name, m.bitOffset / 8]), [
    ["start_ns", 0],
    ["pid", 8],
    ["comm", 12],
  ]);
  assert.equal(btf.findId("task_value", "STRUCT"), ids.value);
  assert.equal(btf.typeToString(ids.ptr), "struct task_value *");
  assert.equal(btf.resolve(ids.typedef), ids.value);
  assert.equal(btf.sizeOf(ids.typedef), 32);
  assert.deepEqual(btf.funcProtoParams("handler"), [{ name: "ctx", typeId: ids.voidPtr }]);
  assert.equal(btf.typeToString(ids.proto), "int ()(void *)");
  const func = btf.type(ids.func);
  assert.equal(func.kind === "FUNC" && func.linkage, BtfFuncLinkage.GLOBAL);
});

Deno.test("writer: bitfields and anonymous members lay out as the parser reads them", () => {
  const { w } = sampleWriter();
  const btf = Btf.fromBytes(w.build());
  const a = btf.field("flags", "a");
  const b = btf.field("flags", "b");
  assert.deepEqual([a.offset, a.size, a.bitOffset, a.bitSize], [0, 4, 0, 3]);
  assert.deepEqual([b.offset, b.size, b.bitOffset, b.bitSize], [0, 4, 3, 5]);
  assert.equal(btf.field("flags", "c").offset, 8);
  assert.equal(btf.sizeOf(btf.findId("flags")!), 16);
  // Anonymous struct member: x and y are found through it.
  assert.equal(btf.field("outer", "tag").offset, 0);
  assert.equal(btf.field("outer", "x").offset, 4);
  assert.equal(btf.field("outer", "y").offset, 8);
});

Deno.test("writer: bpftool reads the blob", () => {
  const { w } = sampleWriter();
  const path = Deno.makeTempFileSync({ suffix: ".btf" });
  try {
    Deno.writeFileSync(path, w.build());
    const out = runSync("bpftool", ["btf", "dump", "file", path, "format", "c"]);
    const text = out.stdout;
    assert.ok(out.code === 0, out.stderr);
    assert.match(
      text,
      /struct task_value \{\n\s+unsigned long long start_ns;\n\s+int pid;\n\s+char comm\[16\];\n\};/,
    );
    assert.match(text, /unsigned int a: 3;/);
    assert.match(text, /typedef struct task_value task_value_t;/);
  } finally {
    Deno.removeSync(path);
  }
});

kernelTest("writer: the kernel accepts the blob (BPF_BTF_LOAD via libbpf)", () => {
  const { w } = sampleWriter();
  const blob = w.build();
  const libbpf = Deno.dlopen("libbpf.so.1", {
    bpf_btf_load: { parameters: ["buffer", "usize", "pointer"], result: "i32" },
  });
  const libc = Deno.dlopen("libc.so.6", { close: { parameters: ["i32"], result: "i32" } });
  try {
    const fd = libbpf.symbols.bpf_btf_load(blob, BigInt(blob.length), null);
    assert.ok(fd >= 0, `bpf_btf_load returned ${fd}`);
    libc.symbols.close(fd);
  } finally {
    libbpf.close();
    libc.close();
  }
});

Deno.test("writer: strings are deduplicated and validated", () => {
  const w = new BtfWriter();
  const a = w.addInt("int", 4, { signed: true });
  w.addTypedef("s32", a);
  w.addTypedef("i32", a);
  assert.equal(w.addString("int"), 1);
  assert.throws(() => w.addInt("bad-name", 4), /invalid int name 'bad-name'/);
  assert.throws(() => w.addTypedef("two words", a), /invalid typedef name 'two words'/);
  assert.throws(() => w.addPtr(99), /unknown type id 99/);
  assert.throws(() => w.addStruct("s", [{ name: "x", typeId: a }], 2), /smaller than its members/);
});
