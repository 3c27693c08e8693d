/**
 * ElfFile against real binaries on this machine, cross-checked with
 * binutils' readelf (-Ws symbols, -lW segments, -SW sections, -n notes).
 */
import {
  deepStrictEqual as assertEquals,
  ok as assert,
  throws as assertThrows,
} from "node:assert/strict";
import { ElfFile, ElfFormatError, parseUsdtArgs } from "../../../lib/symbols/elf.ts";
import { runSync } from "../../support/process.ts";

const BASH = "/bin/bash";
const LIBC = Deno.realPathSync("/lib/x86_64-linux-gnu/libc.so.6");
const LIBBPF = Deno.realPathSync("/usr/lib/x86_64-linux-gnu/libbpf.so.1");
const LIBSTDCXX = "/usr/lib/x86_64-linux-gnu/libstdc++.so.6";

function readelf(...args: string[]): string {
  const out = runSync("readelf", args);
  if (out.code !== 0) throw new Error(`readelf ${args.join(" ")}: ${out.stderr}`);
  return out.stdout;
}

/** readelf -Ws rows: table, name (without @version), value, size, type, bind, ndx. */
function readelfSymbols(path: string) {
  const rows: {
    table: string;
    name: string;
    value: number;
    size: number;
    type: string;
    bind: string;
    ndx: string;
  }[] = [];
  let table = "";
  for (const line of readelf("-Ws", path).split("\n")) {
    const t = line.match(/^Symbol table '\.(\w+)'/);
    if (t) table = t[1];
    const m = line.match(
      /^\s*\d+:\s+([0-9a-f]+)\s+(\d+|0x[0-9a-f]+)\s+(\S+)\s+(\S+)\s+\S+\s+(\S+)\s+(\S+)/,
    );
    if (!m) continue;
    rows.push({
      table,
      name: m[6].replace(/@.*$/, ""),
      value: parseInt(m[1], 16),
      size: Number(m[2]),
      type: m[3],
      bind: m[4],
      ndx: m[5],
    });
  }
  return rows;
}

for (const path of [BASH, LIBC]) {
  Deno.test(`elf: ${path} symbols match readelf -Ws`, () => {
    const elf = ElfFile.read(path);
    const ours = elf.symbols.map((s) => ({
      table: s.table,
      name: s.name,
      value: s.value,
      size: s.size,
      type: s.type,
      bind: s.bind,
      ndx: s.sectionIndex === 0
        ? "UND"
        : s.sectionIndex === 0xfff1
        ? "ABS"
        : String(s.sectionIndex),
    }));
    const theirs = readelfSymbols(path).filter((r) => r.name !== "");
    assert(theirs.length > 1000, `readelf listed ${theirs.length} symbols`);
    assertEquals(ours.length, theirs.length);
    for (let i = 0; i < ours.length; i++) assertEquals(ours[i], theirs[i]);
  });
}

Deno.test("elf: segments and sections match readelf -lW / -SW", () => {
  const elf = ElfFile.read(BASH);
  const loads = readelf("-lW", BASH).split("\n").filter((l) => /^\s+LOAD\s/.test(l)).map((l) => {
    const f = l.trim().split(/\s+/);
    return {
      offset: parseInt(f[1], 16),
      vaddr: parseInt(f[2], 16),
      filesz: parseInt(f[4], 16),
      memsz: parseInt(f[5], 16),
    };
  });
  assertEquals(
    elf.loadSegments.map((s) => ({
      offset: s.offset,
      vaddr: s.vaddr,
      filesz: s.filesz,
      memsz: s.memsz,
    })),
    loads,
  );
  const text = readelf("-SW", BASH).split("\n").find((l) => / \.text /.test(l))!;
  const f = text.replace(/^\s*\[\s*\d+\]\s*/, "").trim().split(/\s+/);
  const sec = elf.section(".text")!;
  assertEquals([sec.addr, sec.offset, sec.size], [
    parseInt(f[2], 16),
    parseInt(f[3], 16),
    parseInt(f[4], 16),
  ]);
});

Deno.test("elf: build-id matches readelf -n", () => {
  for (const path of [BASH, LIBC]) {
    const id = readelf("-n", path).match(/Build ID: ([0-9a-f]+)/)![1];
    assertEquals(ElfFile.read(path).buildId, id);
  }
});

Deno.test("elf: symbol -> file offset goes through PT_LOAD (bash readline, libc malloc)", () => {
  const bash = ElfFile.open(BASH);
  const readline = bash.symbol("readline")!;
  assertEquals(readline.type, "FUNC");
  // bash's text segment: vaddr == file offset; check against the segment arithmetic by hand.
  const seg = bash.loadSegments.find((s) =>
    readline.value >= s.vaddr && readline.value < s.vaddr + s.filesz
  )!;
  assertEquals(bash.symbolFileOffset("readline"), readline.value - seg.vaddr + seg.offset);
  // The bytes at that offset are the function's first bytes in the file (endbr64 on CET builds).
  const file = Deno.readFileSync(BASH);
  const off = bash.symbolFileOffset("readline")!;
  assert(off > 0 && off < file.length);
  // Every loaded section's address maps back to its file offset, including libbpf's
  // data segment, whose vaddr is a page above its file offset.
  for (const path of [BASH, LIBC, LIBBPF]) {
    const elf = ElfFile.open(path);
    const loaded = elf.sections.filter((s) => s.addr !== 0 && s.type !== 8 /* NOBITS */);
    assert(loaded.length > 10);
    for (const s of loaded) {
      assertEquals(elf.vaddrToFileOffset(s.addr), s.offset, `${path} ${s.name}`);
      assertEquals(elf.fileOffsetToVaddr(s.offset), s.addr, `${path} ${s.name}`);
    }
  }
  const data = ElfFile.open(LIBBPF).section(".data")!;
  assert(data.addr !== data.offset, "libbpf's .data is shifted");
  const libc = ElfFile.open(LIBC);
  assertEquals(libc.symbolFileOffset("no_such_function_here"), undefined);
  // Versioned lookups match the base name.
  assertEquals(libc.symbol("malloc@GLIBC_2.2.5")?.name, "malloc");
});

Deno.test("elf: address -> symbol with a load bias, from this process's own libc mapping", () => {
  const libc = ElfFile.open(LIBC);
  // Where is libc mapped in this process? First mapping of the file (offset 0).
  const maps = Deno.readTextFileSync("/proc/self/maps").split("\n");
  const line = maps.find((l) => l.endsWith(LIBC) && / 00000000 /.test(l))!;
  assert(line, "libc is mapped in deno");
  const start = parseInt(line.split("-")[0], 16);
  const bias = libc.loadBias(start, 0);
  assertEquals(bias % 4096, 0);
  // Every mapping of the file agrees on the bias.
  for (const l of maps.filter((l) => l.endsWith(LIBC))) {
    const [range, , offset] = l.split(/\s+/);
    assertEquals(libc.loadBias(parseInt(range.split("-")[0], 16), parseInt(offset, 16)), bias);
  }
  for (const name of ["malloc", "free", "__libc_start_main", "epoll_wait"]) {
    const s = libc.symbol(name)!;
    const r = libc.resolve(bias + s.value + 3, bias)!;
    assertEquals(r.offset, 3);
    assertEquals(r.value, s.value);
    // Aliases share an address: resolve picks one of them.
    assert(
      libc.symbols.some((x) => x.value === s.value && x.name === r.name),
      `${name} -> ${r.name}`,
    );
  }
  assertEquals(libc.resolve(bias - 4096, bias), undefined);
  // A non-PIE style check: bash resolves file vaddrs without a bias.
  const bash = ElfFile.open(BASH);
  assertEquals(bash.resolve(bash.symbol("readline")!.value + 1)?.name, "readline");
});

Deno.test("elf: open() caches by inode and mtime, re-reads a replaced file", () => {
  assert(ElfFile.open(BASH) === ElfFile.open(BASH));
  const dir = Deno.makeTempDirSync();
  try {
    const copy = `${dir}/bash`;
    Deno.copyFileSync(BASH, copy);
    const first = ElfFile.open(copy);
    assert(ElfFile.open(copy) === first);
    Deno.removeSync(copy);
    Deno.copyFileSync(LIBC, copy); // a new inode at the same path
    const second = ElfFile.open(copy);
    assert(second !== first);
    assert(second.symbol("malloc"));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("elf: USDT notes match readelf -n (libstdc++)", () => {
  const elf = ElfFile.read(LIBSTDCXX);
  const expected: {
    provider: string;
    name: string;
    location: number;
    semaphore: number;
    args: string;
  }[] = [];
  const text = readelf("-n", LIBSTDCXX);
  const re =
    /Provider: (\S+)\n\s+Name: (\S+)\n\s+Location: 0x([0-9a-f]+), Base: 0x[0-9a-f]+, Semaphore: 0x([0-9a-f]+)\n\s+Arguments: ?(.*)/g;
  for (const m of text.matchAll(re)) {
    expected.push({
      provider: m[1],
      name: m[2],
      location: parseInt(m[3], 16),
      semaphore: parseInt(m[4], 16),
      args: m[5],
    });
  }
  assert(expected.length >= 3, "libstdc++ has throw/rethrow/catch probes");
  assertEquals(
    elf.usdtProbes.map((p) => ({
      provider: p.provider,
      name: p.name,
      location: p.address,
      semaphore: p.semaphore,
      args: p.argSpec,
    })),
    expected,
  );
  const thr = elf.usdt("libstdcxx", "throw")[0];
  assertEquals(thr.args.map((a) => a.location), [{ kind: "reg", reg: "rdi" }, {
    kind: "reg",
    reg: "rsi",
  }]);
  assertEquals(thr.fileOffset, elf.vaddrToFileOffset(thr.address));
});

Deno.test("elf: USDT argument specs", () => {
  assertEquals(
    parseUsdtArgs("-4@%eax 8@-8(%rbp) 1@$5 -8@$-0x10 8@16(%rsp) 4@foo+8(%rip) 2@(%rdi)"),
    [
      { size: 4, signed: true, location: { kind: "reg", reg: "eax" }, spec: "-4@%eax" },
      {
        size: 8,
        signed: false,
        location: { kind: "mem", reg: "rbp", offset: -8 },
        spec: "8@-8(%rbp)",
      },
      { size: 1, signed: false, location: { kind: "const", value: 5 }, spec: "1@$5" },
      { size: 8, signed: true, location: { kind: "const", value: -16 }, spec: "-8@$-0x10" },
      {
        size: 8,
        signed: false,
        location: { kind: "mem", reg: "rsp", offset: 16 },
        spec: "8@16(%rsp)",
      },
      {
        size: 4,
        signed: false,
        location: { kind: "rip", offset: 8, symbol: "foo" },
        spec: "4@foo+8(%rip)",
      },
      {
        size: 2,
        signed: false,
        location: { kind: "mem", reg: "rdi", offset: 0 },
        spec: "2@(%rdi)",
      },
    ],
  );
  assertEquals(parseUsdtArgs(""), []);
});

Deno.test("elf: non-ELF and truncated files are ElfFormatErrors", () => {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeTextFileSync(
      `${dir}/text`,
      "#!/bin/sh\necho hello, this is not an ELF file at all....................\n",
    );
    assertThrows(() => ElfFile.read(`${dir}/text`), ElfFormatError);
    Deno.writeFileSync(`${dir}/short`, Deno.readFileSync(BASH).subarray(0, 4096));
    assertThrows(() => ElfFile.read(`${dir}/short`), ElfFormatError);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("elf: DT_NEEDED, DT_SONAME and .gnu_debuglink match readelf -d / -p", () => {
  for (const path of [BASH, LIBC, LIBBPF]) {
    const elf = ElfFile.read(path);
    const dyn = readelf("-dW", path);
    const needed = [...dyn.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
    assertEquals(elf.needed, needed, path);
    assertEquals(elf.soname, dyn.match(/\(SONAME\)\s+Library soname: \[([^\]]+)\]/)?.[1], path);
    const link = readelf("-p", ".gnu_debuglink", path).match(/\[\s*0\]\s+(\S+)/)?.[1];
    assertEquals(elf.debugLink, link, path);
    // The build-id debug file, where a -dbg package installed it.
    const byId = `/usr/lib/debug/.build-id/${elf.buildId!.slice(0, 2)}/${
      elf.buildId!.slice(2)
    }.debug`;
    let exists = false;
    try {
      exists = Deno.statSync(byId).isFile;
    } catch { /* not installed */ }
    if (exists) assertEquals(elf.debugFilePath(), byId);
  }
  assert(ElfFile.open(BASH).needed.includes("libc.so.6"));
});
