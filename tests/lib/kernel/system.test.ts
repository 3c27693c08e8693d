/**
 * The system calls lib/kernel makes for the rest of the library: mount(2)
 * for lib/tracefs, /proc/self/mem for the vDSO, mmap of a file for lib/btf,
 * and the feature probes, each asked once.
 */
import { deepEqual, equal, match, ok, throws } from "node:assert/strict";
import { FeatureMissingError } from "../../../lib/kernel/errors.ts";
import { dynamicPmu, hasKprobes, hasUprobes, hasVmlinuxBtf } from "../../../lib/kernel/features.ts";
import { mapFileReadOnly } from "../../../lib/kernel/mapped_file.ts";
import { mountTracefs } from "../../../lib/kernel/mount.ts";
import { readOwnMemory } from "../../../lib/kernel/process_memory.ts";

const root = Deno.uid() === 0;

Deno.test({
  name: "mountTracefs: the errno name when mount(2) fails",
  ignore: !root,
  fn() {
    equal(mountTracefs("/nonexistent/bpftk-mount-point"), "ENOENT");
  },
});

Deno.test("readOwnMemory: the bytes at an address of this process", () => {
  const maps = Deno.readTextFileSync("/proc/self/maps").split("\n");
  const vdso = maps.find((l) => l.endsWith("[vdso]"));
  if (!vdso) return; // a kernel without a vDSO mapping
  const start = parseInt(vdso.split("-")[0], 16);
  deepEqual([...readOwnMemory(start, 4)], [0x7f, 0x45, 0x4c, 0x46]); // an ELF image
});

Deno.test("mapFileReadOnly: the file's bytes, or undefined when it cannot map", () => {
  const path = Deno.makeTempFileSync();
  try {
    Deno.writeTextFileSync(path, "mapped");
    equal(new TextDecoder().decode(mapFileReadOnly(path)), "mapped");
    equal(mapFileReadOnly("/nonexistent"), undefined);
    Deno.writeTextFileSync(path, "");
    equal(mapFileReadOnly(path), undefined);
  } finally {
    Deno.removeSync(path);
  }
});

Deno.test("features: each answer is stable, and a missing PMU names its kernel option", () => {
  equal(hasVmlinuxBtf(), hasVmlinuxBtf());
  equal(hasUprobes(), hasUprobes());
  if (hasUprobes()) ok(dynamicPmu("uprobe").type > 0);
  if (Deno.statSync("/sys/bus/event_source/devices").isDirectory && !hasKprobes()) {
    throws(() => dynamicPmu("kprobe"), (e: Error) => {
      ok(e instanceof FeatureMissingError);
      match(e.message, /CONFIG_KPROBE_EVENTS/);
      return true;
    });
  }
});
