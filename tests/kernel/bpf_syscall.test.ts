/**
 * The gate for every kernel test: the bpf syscall works here. In CI this test
 * is never skipped, so a machine where BPF is unusable fails the suite loudly.
 */
import { equal as assertEquals } from "node:assert/strict";
import { createMap } from "../../lib/kernel/map.ts";
import { libbpfVersion } from "../../lib/kernel/libbpf.ts";
import { kernelTest } from "../support/kernel.ts";

kernelTest("bpf syscall: create a map, write and read it back", () => {
  console.log(`libbpf ${libbpfVersion()}`);
  const m = createMap({ name: "gate", type: "hash", keySize: 4, valueSize: 8, maxEntries: 4 });
  try {
    const key = new Uint8Array([1, 0, 0, 0]);
    const value = new Uint8Array(8);
    new DataView(value.buffer).setBigUint64(0, 0x1234n, true);
    m.update(key, value);
    const back = m.lookup(key)!;
    assertEquals(new DataView(back.buffer).getBigUint64(0, true), 0x1234n);
    assertEquals(m.entries().length, 1);
    assertEquals(m.delete(key), true);
    assertEquals(m.lookup(key), undefined);
  } finally {
    m.close();
  }
});
