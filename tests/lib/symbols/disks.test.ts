/** lib/symbols/disks.ts: names and kernel dev_t numbers of block devices, checked against sysfs. */
import { equal as assertEquals, ok as assert } from "node:assert/strict";
import {
  devString,
  diskByName,
  DiskNames,
  kernelDev,
  listBlockDevices,
} from "../../../lib/symbols/disks.ts";

Deno.test("kernelDev packs major:minor as the kernel's MKDEV (20 minor bits)", () => {
  assertEquals(kernelDev(7, 3), 0x700003);
  assertEquals(kernelDev(259, 1048575), (259 * 2 ** 20) + 1048575);
  assertEquals(devString(kernelDev(254, 16)), "254:16");
});

Deno.test("every device in /sys/class/block resolves by name and back by number", () => {
  const devices = listBlockDevices();
  assert(devices.length > 0, "no block devices listed");
  const names = new DiskNames();
  for (const d of devices) {
    const sysfs = Deno.readTextFileSync(`/sys/class/block/${d.name}/dev`).trim();
    assertEquals(devString(d.dev), sysfs, d.name);
    assertEquals(diskByName(d.name)?.dev, d.dev);
    assertEquals(diskByName(`/dev/${d.name}`)?.dev, d.dev);
    assertEquals(names.nameOf(d.dev), d.name);
  }
});

Deno.test("unknown names and paths outside sysfs resolve to nothing", () => {
  for (const name of ["nosuchdisk", "../../../etc", "", "a/b"]) {
    assertEquals(diskByName(name), undefined, name);
  }
  assertEquals(new DiskNames().nameOf(kernelDev(4095, 1048575)), undefined);
});
