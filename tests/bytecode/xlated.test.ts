/**
 * Our disassembler against the kernel's own: load programs, fetch the
 * kernel's translated instructions with `bpftool prog dump xlated ... opcodes`,
 * decode those exact bytes with our decoder, and compare our text with
 * bpftool's line by line.
 */
import { equal as assertEquals, ok as assert } from "node:assert/strict";
import * as B from "../../bytecode/build.ts";
import { decode } from "../../bytecode/encode.ts";
import { disassemble, mapById } from "../../bytecode/disasm.ts";
import type { Insn } from "../../bytecode/insn.ts";
import { loadAndAttach } from "../../lib/cli/session.ts";
import { defineMap } from "../../lib/dsl/maps.ts";
import { tpBtf } from "../../lib/dsl/program.ts";
import { r0, r10, r7, r8 } from "../../lib/dsl/registers.ts";
import { loadProgram } from "../../lib/kernel/program.ts";
import { programInfo } from "../../lib/kernel/stats.ts";
import { kernelTest } from "../support/kernel.ts";
import { runOk } from "../support/process.ts";

/** bpftool's listing: for each instruction, its text and its bytes. */
async function xlated(id: number): Promise<{ text: string; bytes: number[] }[]> {
  const out = await runOk("bpftool", ["prog", "dump", "xlated", "id", String(id), "opcodes"]);
  const lines = out.split("\n");
  const insns: { text: string; bytes: number[] }[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^\s*\d+: \(/.test(lines[i])) continue;
    const bytes = lines[i + 1].trim().split(/\s+/).map((h) => parseInt(h, 16));
    insns.push({ text: lines[i].trimEnd(), bytes });
  }
  return insns;
}

/** Helper names as bpftool finds them: __bpf_call_base + imm, looked up in kallsyms. */
function kallsymsHelperNames(): (imm: number) => string | undefined {
  const byAddr = new Map<bigint, string>();
  let base = 0n;
  for (const line of Deno.readTextFileSync("/proc/kallsyms").split("\n")) {
    const [addr, , name] = line.split(/\s+/);
    if (!name) continue;
    const a = BigInt(`0x${addr}`);
    if (name === "__bpf_call_base") base = a;
    if (!byAddr.has(a)) byAddr.set(a, name);
  }
  return (imm) => {
    const name = byAddr.get(base + BigInt(imm));
    return name;
  };
}

async function compareWithKernel(fd: { fd: number }): Promise<number> {
  const id = programInfo(fd as never).id;
  const kernel = await xlated(id);
  const bytes = new Uint8Array(kernel.flatMap((k) => k.bytes));
  const ours = disassemble(decode(bytes), { mapName: mapById, helperName: kallsymsHelperNames() });
  assertEquals(ours.length, kernel.length);
  for (let i = 0; i < ours.length; i++) assertEquals(ours[i], kernel[i].text);
  return ours.length;
}

/**
 * Every instruction class the kernel keeps as written in a tracing program.
 * Not here: the ISA v4 additions (sdiv/smod, movsx, sign-extending loads,
 * bswap): bpftool 7.1 (Debian 12) predates them and prints them as their v3
 * look-alikes; tests/bytecode covers their spelling against the kernel's disasm.c.
 */
function everyClass(): Insn[] {
  const body: Insn[] = [
    B.mov64Imm(1, 7),
    B.mov64Reg(2, 1),
    B.mov32Imm(3, -5),
    B.mov32Reg(4, 3),
    ...(["add", "sub", "mul", "or", "and", "lsh", "rsh", "xor", "arsh"] as const).flatMap(
      (
        op,
      ) => [B.alu64Imm(op, 2, 3), B.alu64Reg(op, 2, 1), B.alu32Imm(op, 4, 3), B.alu32Reg(op, 4, 3)],
    ),
    B.alu64Imm("div", 2, 3),
    B.alu64Imm("mod", 2, 3),
    B.alu32Imm("div", 4, 3),
    B.neg64(2),
    B.neg32(4),
    B.toBe(2, 16),
    B.toLe(2, 32),
    B.lddw(5, 0x1122334455667788n),
    B.stx("u64", 10, 1, -8),
    B.stx("u32", 10, 1, -16),
    B.stx("u16", 10, 1, -24),
    B.stx("u8", 10, 1, -32),
    B.st("u64", 10, -40, 3),
    B.st("u32", 10, -48, -1),
    B.ldx("u64", 2, 10, -8),
    B.ldx("u32", 2, 10, -16),
    B.ldx("u16", 2, 10, -24),
    B.ldx("u8", 2, 10, -32),
    B.atomicAdd("u64", 10, 1, -8),
    B.atomicAdd("u32", 10, 1, -16),
    B.atomic("or", "u64", 10, 1, -8),
    B.atomic("and", "u64", 10, 1, -8, true),
    B.atomic("xor", "u32", 10, 1, -16, true),
    B.atomic("xchg", "u64", 10, 1, -8),
    B.mov64Imm(0, 0),
    B.atomic("cmpxchg", "u64", 10, 1, -8),
    B.jmpImm("jeq", 2, 1, 0),
    B.jmpReg("jgt", 2, 1, 0),
    B.jmpImm("jsge", 2, -1, 0),
    B.jmpImm("jset", 2, 8, 0),
    B.jmp32Imm("jne", 2, 4, 0),
    B.jmp32Reg("jslt", 2, 1, 0),
    B.jmpImm("jle", 2, 9, 0),
    B.ja(0),
    B.call(5), // ktime_get_ns
    B.call(8), // get_smp_processor_id
    B.mov64Imm(0, 0),
    B.exit(),
  ];
  return body;
}

kernelTest("disassembly matches bpftool's xlated dump, every class", async () => {
  using prog = loadProgram({
    name: "xlated_test",
    type: "tp_btf",
    insns: everyClass(),
    attachBtfId: (await import("../../lib/btf/mod.ts")).tpBtfTarget("sched_switch").typedefId,
  });
  const n = await compareWithKernel(prog);
  assert(n > 60, `compared ${n} instructions`);
});

kernelTest("disassembly matches bpftool's xlated dump, a DSL program with maps", async () => {
  const counts = defineMap({
    name: "xl_counts",
    type: "hash",
    keySize: 4,
    valueSize: 8,
    maxEntries: 16,
  });
  const pcpu = defineMap({
    name: "xl_pcpu",
    type: "percpu_array",
    keySize: 4,
    valueSize: 8,
    maxEntries: 1,
  });
  const p = tpBtf("sched_switch", { name: "xlated_dsl" });
  const key = p.stack(4);
  p.ctx(r7, "next").field(r8, r7, "task_struct", "pid").store("u32", r10, key, r8);
  p.counterAdd(counts, key, 1);
  p.store("u32", r10, key, 0).counterAdd(pcpu, key, 1);
  p.ktime(r0).ret(0);
  using session = loadAndAttach([p.build()]);
  const n = await compareWithKernel(session.programs[0]);
  assert(n > 20);
});
