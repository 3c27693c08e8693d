/**
 * User symbols: /proc/PID/maps parsing, a PIE executable and a shared library
 * placed at their load bias, libc, a JIT perf map, and "[unknown]" — against
 * a process built here that prints the addresses it knows.
 */
import { equal as assertEquals, match as assertMatch, ok as assert } from "node:assert/strict";
import { parseProcMaps, PerfMap, UNKNOWN, UserSymbolizer } from "../../../lib/symbols/user.ts";
import { buildWorkloads, Workload } from "../../support/stack_workloads.ts";

Deno.test("parseProcMaps: ranges, offsets, paths with spaces, anonymous and pseudo mappings", () => {
  const maps = parseProcMaps(
    [
      "55d0c8e00000-55d0c8e2f000 r--p 00000000 fd:01 1311  /usr/bin/bash",
      "55d0c8e2f000-55d0c8f0e000 r-xp 0002f000 fd:01 1311  /usr/bin/bash",
      "7f10a0000000-7f10a0021000 rw-p 00000000 00:00 0 ",
      "7f10a1000000-7f10a1001000 r-xp 00001000 fd:01 77   /tmp/my lib (deleted)",
      "7ffd5a7e5000-7ffd5a7e7000 r-xp 00000000 00:00 0    [vdso]",
      "garbage",
    ].join("\n"),
  );
  assertEquals(maps.length, 5);
  assertEquals(maps[1].start, 0x55d0c8e2f000);
  assertEquals(maps[1].end, 0x55d0c8f0e000);
  assertEquals(maps[1].perms, "r-xp");
  assertEquals(maps[1].offset, 0x2f000);
  assertEquals(maps[1].inode, 1311);
  assertEquals(maps[1].path, "/usr/bin/bash");
  assertEquals(maps[2].path, "");
  assertEquals(maps[3].path, "/tmp/my lib (deleted)");
  assertEquals(maps[4].path, "[vdso]");
});

Deno.test("PerfMap: ranges by start and size, later lines win, gaps are unknown", () => {
  const map = PerfMap.parse(
    [
      "7f0000001000 100 JS:*outer file:///a.js:1:1",
      "7f0000001040 20 Builtin:Stub",
      "0x7f0000002000 0x10 JS:~moved",
      "7f0000002000 10 JS:*moved file:///a.js:9:1",
      "not a line",
    ].join("\n"),
  );
  assertEquals(map.size, 4);
  assertEquals(map.resolve(0x7f0000001000), "JS:*outer file:///a.js:1:1");
  assertEquals(map.resolve(0x7f0000001048), "Builtin:Stub");
  // Past the stub, still inside the outer function.
  assertEquals(map.resolve(0x7f00000010f0), "JS:*outer file:///a.js:1:1");
  assertEquals(map.resolve(0x7f0000001100), undefined);
  assertEquals(map.resolve(0x7f0000002004), "JS:*moved file:///a.js:9:1");
  assertEquals(map.resolve(0x10), undefined);
});

Deno.test("UserSymbolizer: PIE executable, shared library, libc, vDSO, perf map, unknown", async () => {
  const w = await buildWorkloads();
  const proc = new Workload(w.libMain, []);
  const perfMap = `/tmp/perf-${proc.pid}.map`;
  try {
    const pid = Number(await proc.value("pid"));
    const main = parseInt(await proc.value("main"), 16);
    const lib = parseInt(await proc.value("lib"), 16);
    const libc = parseInt(await proc.value("libc"), 16);
    const anon = parseInt(await proc.value("anon"), 16);
    // A JIT would write this as it compiles code into anonymous memory.
    await Deno.writeTextFile(perfMap, `${(anon + 0x100).toString(16)} 40 JS:*jitted_function\n`);

    const syms = new UserSymbolizer();
    // The executable is PIE (loaded at a random base) and the library at another.
    assert(main > 0x500000000000, `PIE base expected, got 0x${main.toString(16)}`);
    assertEquals(syms.nameOf(pid, main), "known_main_function");
    assertEquals(syms.nameOf(pid, BigInt(main + 3)), "known_main_function");
    assertEquals(syms.resolve(pid, main + 3)?.offset, 3);
    assertEquals(syms.resolve(pid, main)?.module, w.libMain);
    assertEquals(syms.nameOf(pid, lib + 1), "known_library_function");
    assertEquals(syms.resolve(pid, lib)?.module, `${w.dir}/libknown.so`);
    assertMatch(syms.nameOf(pid, libc), /getppid/);
    assertEquals(syms.nameOf(pid, anon + 0x110), "JS:*jitted_function");
    assertEquals(syms.nameOf(pid, anon + 0x8), UNKNOWN);
    // The vDSO, named from the kernel's image.
    const vdsoMap = syms.process(pid).maps.find((m) => m.path === "[vdso]");
    const vdso = syms.files.vdso();
    assert(vdsoMap && vdso, "the vDSO is mapped and readable");
    const gettime = vdso.symbol("__vdso_clock_gettime")!;
    const at = vdsoMap.start + gettime.value - vdso.loadSegments[0].vaddr + 4;
    assertMatch(syms.nameOf(pid, at), /clock_gettime/);
    assertEquals(syms.nameOf(pid, 0x1000), UNKNOWN);
    // Files are parsed once per inode, whichever process maps them: our own
    // libc is the workload's.
    const parsed = syms.files.size;
    const ourLibc = parseProcMaps(await Deno.readTextFile("/proc/self/maps"))
      .find((m) => /\/libc\.so/.test(m.path) && m.perms.includes("x"));
    assert(ourLibc, "libc is mapped executable in this process");
    syms.resolve(Deno.pid, ourLibc.start + 0x100);
    assertEquals(syms.files.size, parsed, "libc was not parsed a second time");
  } finally {
    await Deno.remove(perfMap).catch(() => {});
    await proc.close();
    await Deno.remove(w.dir, { recursive: true });
  }
});

Deno.test("UserSymbolizer: a process that is gone resolves nothing, without throwing", () => {
  const syms = new UserSymbolizer();
  assertEquals(syms.nameOf(4194304, 0x401000), UNKNOWN);
});
