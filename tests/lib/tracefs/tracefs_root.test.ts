import assert from "node:assert/strict";
import {
  locateTracefs,
  realTracefsSystem,
  tracefsRoot,
  type TracefsSystem,
} from "../../../lib/tracefs/mod.ts";
import { runSync } from "../../support/process.ts";
import { kernelTest } from "../../support/kernel.ts";

function fakeSystem(state: {
  mounted: string[];
  existing: string[];
  root: boolean;
  mountError?: string;
}): TracefsSystem & { mounts: string[] } {
  const mounts: string[] = [];
  return {
    mounts,
    candidates: ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"],
    isMounted: (dir) => state.mounted.includes(dir),
    dirExists: (dir) => state.existing.includes(dir),
    isRoot: () => state.root,
    mount(dir) {
      mounts.push(dir);
      if (state.mountError) return state.mountError;
      state.mounted.push(dir);
      return undefined;
    },
  };
}

Deno.test("locateTracefs: prefers a mounted /sys/kernel/tracing", () => {
  const sys = fakeSystem({
    mounted: ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"],
    existing: [],
    root: true,
  });
  assert.equal(locateTracefs(sys), "/sys/kernel/tracing");
  assert.deepEqual(sys.mounts, []);
});

Deno.test("locateTracefs: falls back to debugfs", () => {
  const sys = fakeSystem({ mounted: ["/sys/kernel/debug/tracing"], existing: [], root: false });
  assert.equal(locateTracefs(sys), "/sys/kernel/debug/tracing");
});

Deno.test("locateTracefs: mounts when empty and root", () => {
  const sys = fakeSystem({ mounted: [], existing: ["/sys/kernel/tracing"], root: true });
  assert.equal(locateTracefs(sys), "/sys/kernel/tracing");
  assert.deepEqual(sys.mounts, ["/sys/kernel/tracing"]);
});

Deno.test("locateTracefs: one-line errors", () => {
  assert.throws(
    () =>
      locateTracefs(fakeSystem({ mounted: [], existing: ["/sys/kernel/tracing"], root: false })),
    /^Error: tracefs is not mounted at \/sys\/kernel\/tracing and mounting it needs root/,
  );
  assert.throws(
    () =>
      locateTracefs(
        fakeSystem({
          mounted: [],
          existing: ["/sys/kernel/tracing"],
          root: true,
          mountError: "permission denied",
        }),
      ),
    {
      message:
        "tracefs is not mounted and 'mount -t tracefs nodev /sys/kernel/tracing' failed: permission denied",
    },
  );
  assert.throws(
    () => locateTracefs(fakeSystem({ mounted: [], existing: [], root: true })),
    /^Error: tracefs not found: none of/,
  );
});

kernelTest("tracefsRoot: finds tracefs on this machine", () => {
  const root = tracefsRoot();
  assert.ok(Deno.statSync(`${root}/events/sched/sched_switch/format`).isFile);
  assert.equal(tracefsRoot(), root);
});

kernelTest("locateTracefs: really mounts tracefs on an empty directory (root)", () => {
  const dir = Deno.makeTempDirSync({ prefix: "tracefs-mount-test-" });
  try {
    const root = locateTracefs({ ...realTracefsSystem, candidates: [dir] });
    assert.equal(root, dir);
    assert.ok(Deno.statSync(`${dir}/events/sched/sched_switch/format`).isFile);
  } finally {
    runSync("umount", [dir]);
    Deno.removeSync(dir);
  }
});
