/**
 * The system calls lib/kernel makes for the rest of the library: mount(2)
 * for lib/tracefs, /proc/self/mem for the vDSO, mmap of a file for lib/btf,
 * and the feature probes, each asked once. And a partial failure releases
 * what it made: nothing else will (there is no registry of open objects).
 */
import { deepEqual, equal, match, ok, throws } from "node:assert/strict";
import { exit, mov64Imm } from "../../../bytecode/build.ts";
import { attachSampling } from "../../../lib/kernel/attach.ts";
import { FeatureMissingError } from "../../../lib/kernel/errors.ts";
import { dynamicPmu, hasKprobes, hasUprobes, hasVmlinuxBtf } from "../../../lib/kernel/features.ts";
import { mapFileReadOnly } from "../../../lib/kernel/mapped_file.ts";
import { mountTracefs } from "../../../lib/kernel/mount.ts";
import { readOwnMemory } from "../../../lib/kernel/process_memory.ts";
import { loadProgram } from "../../../lib/kernel/program.ts";

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

/** Descriptors of this process that are BPF links or perf events (by their fdinfo). */
function linksAndPerfEvents(): number {
  let n = 0;
  for (const e of Deno.readDirSync("/proc/self/fdinfo")) {
    try {
      const info = Deno.readTextFileSync(`/proc/self/fdinfo/${e.name}`);
      if (
        /^link_type:/m.test(info) ||
        Deno.readLinkSync(`/proc/self/fd/${e.name}`).includes("perf_event")
      ) n++;
    } catch { /* closed meanwhile */ }
  }
  return n;
}

Deno.test({
  name: "attachSampling: a CPU that fails releases the links made on the others",
  ignore: !root,
  fn() {
    using prog = loadProgram({
      name: "t_sampling",
      type: "perf_event",
      insns: [mov64Imm(0, 0), exit()],
    });
    const before = linksAndPerfEvents();
    throws(() => attachSampling(prog, { frequency: 49, cpus: [0, 99999] }));
    equal(linksAndPerfEvents(), before);
    const links = attachSampling(prog, { frequency: 49, cpus: [0] });
    equal(linksAndPerfEvents(), before + 2); // the link and its perf event
    for (const link of links) link.close();
    equal(linksAndPerfEvents(), before);
  },
});
