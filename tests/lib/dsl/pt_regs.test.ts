/**
 * lib/dsl/pt_regs: register names and offsets (BTF against the uapi table),
 * the code arg/retval/usdtArg emit, uprobe targets from ELF symbols; then a
 * real uprobe and uretprobe on libc's syscall() called from Python with six
 * known arguments: the program sees each argument and the return value.
 */
import {
  deepEqual,
  equal as assertEquals,
  ok as assert,
  throws as assertThrows,
} from "node:assert/strict";
import { addToUsdtSemaphore } from "../../../lib/kernel/process_memory.ts";
import {
  arg,
  ARG_REGISTERS,
  ProbeTargetError,
  ptRegsField,
  ptRegsOffset,
  retval,
  uprobe,
  usdt,
} from "../../../lib/dsl/pt_regs.ts";
import { kernelLayouts } from "../../../lib/dsl/layouts.ts";
import { defineMap } from "../../../lib/dsl/maps.ts";
import { r1, r10, r7, r8 } from "../../../lib/dsl/registers.ts";
import { ElfFile } from "../../../lib/symbols/elf.ts";
import { loadAndAttach } from "../../../lib/cli/session.ts";
import { kernelTest, loadedProgramNames } from "../../support/kernel.ts";
import { Spawned } from "../../support/process.ts";

const LIBC = Deno.realPathSync("/lib/x86_64-linux-gnu/libc.so.6");
const LIBSTDCXX = "/usr/lib/x86_64-linux-gnu/libstdc++.so.6";

Deno.test("pt_regs: x86-64 register names -> pt_regs fields", () => {
  const cases: [string, string | undefined][] = [
    ["rdi", "di"],
    ["%edi", "di"],
    ["di", "di"],
    ["dil", "di"],
    ["rax", "ax"],
    ["eax", "ax"],
    ["al", "ax"],
    ["r8", "r8"],
    ["r8d", "r8"],
    ["r15w", "r15"],
    ["rsp", "sp"],
    ["rip", "ip"],
    ["ah", undefined],
    ["xmm0", undefined],
  ];
  for (const [name, field] of cases) assertEquals(ptRegsField(name), field, name);
});

Deno.test("pt_regs: BTF offsets match the uapi layout (the fallback without BTF)", () => {
  const noBtf = {
    ...kernelLayouts,
    structField: () => {
      throw new Error("no BTF");
    },
  };
  const fields = ["r15", "bp", "bx", "r9", "r8", "ax", "cx", "dx", "si", "di", "ip", "sp"];
  for (const f of fields) assertEquals(ptRegsOffset(f), ptRegsOffset(f, noBtf), f);
  deepEqual(ARG_REGISTERS.map((r) => ptRegsOffset(r)), [112, 104, 96, 88, 72, 64]);
  assertEquals(ptRegsOffset("ax"), 80);
});

Deno.test("pt_regs: arg/retval are ctx loads; uprobe() resolves a symbol's file offset", () => {
  const p = uprobe(LIBC, "malloc", { name: "t_malloc" });
  assertEquals(p.attach.kind, "uprobe");
  if (p.attach.kind !== "uprobe") return;
  assertEquals(p.attach.offset, ElfFile.open(LIBC).symbolFileOffset("malloc"));
  assertEquals(p.attach.retprobe, false);
  arg(p, r7, 0);
  arg(p, r8, 5);
  retval(p, r1);
  const built = p.ret(0).build();
  assertEquals(built.type, "kprobe");
  // r6 = r1 (ctx), then three u64 loads from r6.
  const loads = built.insns.slice(1, 4).map((i) => [i.dst, i.src, i.off]);
  deepEqual(loads, [[7, 6, 112], [8, 6, 64], [1, 6, 80]]);
  assertThrows(() => arg(p, r7, 6), ProbeTargetError);
  assertThrows(() => uprobe(LIBC, "no_such_function_at_all"), /has no function/);
  assertThrows(() => uprobe("/no/such/file", "main"), /no such file/);
  const ret = uprobe(LIBC, 0x1234, { retprobe: true, pid: 42 });
  deepEqual(ret.attach, { kind: "uprobe", path: LIBC, offset: 0x1234, retprobe: true, pid: 42 });
});

Deno.test("pt_regs: usdt() makes one program per site; usdtArg follows the spec", () => {
  const sites = usdt(LIBSTDCXX, "libstdcxx", "throw", { pid: 7 });
  const notes = ElfFile.open(LIBSTDCXX).usdt("libstdcxx", "throw");
  assertEquals(sites.length, notes.length);
  const p = sites[0];
  if (p.attach.kind !== "uprobe") throw new Error("not a uprobe");
  assertEquals(p.attach.offset, notes[0].fileOffset);
  assertEquals(p.attach.pid, 7);
  // "8@%rdi 8@%rsi": plain register reads.
  p.usdtArg(r7, 0).usdtArg(r8, 1);
  const insns = p.ret(0).build().insns.slice(1, 3).map((i) => [i.dst, i.src, i.off]);
  deepEqual(insns, [[7, 6, 112], [8, 6, 104]]);
  assertThrows(() => p.usdtArg(r7, 2), /has 2 arguments, not 3/);
  assertThrows(() => usdt(LIBSTDCXX, "libstdcxx", "nope"), /no USDT probe libstdcxx:nope/);
  // A memory operand with a signed 4-byte size: probe_read_user then sign extension.
  const catchSite = usdt(LIBSTDCXX, "libstdcxx", "catch")[0];
  assertEquals(catchSite.note.args[1].spec, "8@-80(%rbx)");
  const built = catchSite.usdtArg(r7, 1).ret(0).build();
  assert(built.insns.some((i) => i.code === 0x85 && i.imm === 112), "calls probe_read_user");
  assert(built.insns.some((i) => i.off === ptRegsOffset("bx") && i.src === 6), "reads rbx");
});

kernelTest("pt_regs: uprobe/uretprobe on libc syscall() see its six arguments", async () => {
  const seen = defineMap({
    name: "seen",
    type: "array",
    keySize: 4,
    valueSize: 8,
    maxEntries: 8,
  });
  // Python waits for "go", then calls syscall(SYS_getpid, 11, 22, 33, 44, 55).
  const child = new Spawned("python3", [
    "-c",
    "import ctypes,sys; sys.stdin.readline(); l=ctypes.CDLL(None); " +
    "print(l.syscall(39, 11, 22, 33, 44, 55), flush=True)",
  ], { stdin: "piped" });
  const pid = child.pid;
  const store = (p: ReturnType<typeof uprobe>, slot: number) => {
    const key = p.stack(4), value = p.stack(8);
    p.store("u32", r10, key, slot).store("u64", r10, value, r7).update(seen, key, value);
  };
  const entry = uprobe(LIBC, "syscall", { pid, name: "t_ptregs_in" });
  for (let i = 0; i < 6; i++) {
    arg(entry, r7, i);
    store(entry, i);
  }
  const exit = uprobe(LIBC, "syscall", { pid, retprobe: true, name: "t_ptregs_out" });
  retval(exit, r7);
  store(exit, 6);
  try {
    using session = loadAndAttach([entry.ret(0).build(), exit.ret(0).build()]);
    await child.write("go\n");
    await child.closeStdin();
    const out = (await child.wait()).stdout.trim();
    assertEquals(Number(out), pid, "syscall(getpid) returned the PID");
    const map = session.maps.get(seen)!;
    const values = [0, 1, 2, 3, 4, 5, 6].map((k) => {
      const key = new Uint8Array(4);
      new DataView(key.buffer).setUint32(0, k, true);
      return Number(new DataView(map.lookup(key)!.buffer).getBigUint64(0, true));
    });
    deepEqual(values, [39, 11, 22, 33, 44, 55, pid]);
  } finally {
    child.killTree();
  }
  const names = await loadedProgramNames();
  assert(!names.includes("t_ptregs_in") && !names.includes("t_ptregs_out"));
});

kernelTest("pt_regs: USDT libstdcxx:throw fires with its two arguments", async () => {
  const seen = defineMap({ name: "seen", type: "array", keySize: 4, valueSize: 8, maxEntries: 2 });
  // Python throws an int through libstdc++'s __cxa_throw (then aborts: nothing catches it).
  const child = new Spawned("python3", [
    "-c",
    [
      "import ctypes, resource, sys",
      "resource.setrlimit(resource.RLIMIT_CORE, (0, 0))",
      "l = ctypes.CDLL('libstdc++.so.6')",
      "l.__cxa_allocate_exception.restype = ctypes.c_void_p",
      "p = l.__cxa_allocate_exception(8)",
      "ti = ctypes.addressof(ctypes.c_void_p.in_dll(l, '_ZTIi'))",
      "print(p, ti, flush=True)",
      "sys.stdin.readline()",
      "l.__cxa_throw(ctypes.c_void_p(p), ctypes.c_void_p(ti), None)",
    ].join("\n"),
  ], { stdin: "piped" });
  await child.waitForOutput(/\n/);
  const [object, typeinfo] = child.stdout.trim().split(" ").map(Number);
  const programs = usdt(LIBSTDCXX, "libstdcxx", "throw", { pid: child.pid, name: "t_usdt" }).map(
    (p) => {
      for (const i of [0, 1]) {
        const key = p.stack(4), value = p.stack(8);
        p.usdtArg(r7, i).store("u32", r10, key, i).store("u64", r10, value, r7)
          .update(seen, key, value);
      }
      return p.ret(0).build();
    },
  );
  try {
    using session = loadAndAttach(programs);
    await child.write("go\n");
    await child.closeStdin();
    const status = await child.wait();
    assertEquals(status.signal, "SIGABRT", "the uncaught exception ends in std::terminate");
    const map = session.maps.get(seen)!;
    const values = [0, 1].map((k) => {
      const key = new Uint8Array(4);
      new DataView(key.buffer).setUint32(0, k, true);
      return Number(new DataView(map.lookup(key)!.buffer).getBigUint64(0, true));
    });
    deepEqual(values, [object, typeinfo]);
  } finally {
    child.killTree();
  }
});

Deno.test("pt_regs: addToUsdtSemaphore changes a u16 in another process's memory", async () => {
  // Python holds a u16 counter at a known address and prints it after "go".
  const child = new Spawned("python3", [
    "-c",
    "import ctypes, sys\nc = (ctypes.c_uint16 * 2)(5, 0xbeef)\n" +
    "print(ctypes.addressof(c), flush=True)\nsys.stdin.readline()\nprint(c[0], hex(c[1]))",
  ], { stdin: "piped" });
  try {
    await child.waitForOutput(/\n/);
    const text = child.stdout;
    const address = Number(text.trim());
    assertEquals(addToUsdtSemaphore(child.pid, address, 1), 6);
    assertEquals(addToUsdtSemaphore(child.pid, address, 1), 7);
    assertEquals(addToUsdtSemaphore(child.pid, address, -1), 6);
    await child.write("go\n");
    await child.closeStdin();
    const all = (await child.wait()).stdout;
    const rest = all.slice(all.indexOf("\n") + 1);
    assertEquals(rest.trim(), "6 0xbeef", "the neighbouring u16 is untouched");
  } finally {
    child.killTree();
  }
});
