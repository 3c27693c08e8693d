/**
 * The program cache (lib/cli/program_cache.ts): a hit gives back exactly the
 * programs a fresh build makes; any change of what decides them misses; an
 * entry or directory that is not as we left it is ignored; our verifier's
 * verdict is only used for the very bytes it accepted.
 */
import { deepEqual, equal, notEqual, ok } from "node:assert/strict";
import { encode } from "../../../bytecode/encode.ts";
import type { BuiltProgram } from "../../../lib/dsl/builder.ts";
import {
  cacheIdentity,
  entryPath,
  readEntry,
  sha256,
  stableJson,
  startPrograms,
  usableCacheDir,
  writeEntry,
} from "../../../lib/cli/program_cache.ts";
import { tool as runqlat } from "../../../tools/runqlat.ts";
import { kernelTest } from "../../support/kernel.ts";

const KERNEL = {
  release: "6.18.0-test",
  version: "#1 SMP",
  notes: "00",
  btf: [1, "9feb"],
  cpus: "0-1",
};

/** A fresh cache directory (mode 0700) and a code file standing for our sources. */
function scratch(): { dir: string; code: string; files: () => string[]; [Symbol.dispose](): void } {
  const root = Deno.makeTempDirSync({ prefix: "bpftk-cache-test-" });
  Deno.chmodSync(root, 0o755);
  const dir = `${root}/bpftk`;
  const code = `${root}/source.ts`;
  Deno.writeTextFileSync(code, "export const x = 1;\n");
  return {
    dir,
    code,
    files: () => [code],
    [Symbol.dispose]: () => Deno.removeSync(root, { recursive: true }),
  };
}

function identityOf(argv: string[], kernel: unknown = KERNEL): string {
  const { options } = runqlat.parse(argv);
  return cacheIdentity({ tool: "runqlat", options }, () => kernel)!;
}

/** What must round-trip: the bytes and everything else but instruction origins. */
function shape(p: BuiltProgram) {
  const { insns, maps, mapRefs, ...rest } = p;
  return {
    code: [...encode(insns)],
    maps: maps.map((m) => ({ ...m })),
    mapRefs: mapRefs.map((r) => [r.index, { ...r.map }]),
    // an optional field left undefined by the builder is absent after the round trip
    rest: JSON.parse(JSON.stringify(rest)),
  };
}

async function stored(argv: string[], s: ReturnType<typeof scratch>, accept = true) {
  const programs = runqlat.programs(argv);
  const identity = identityOf(argv);
  const dir = usableCacheDir(s.dir)!;
  ok(dir, "a fresh directory is usable");
  await writeEntry(dir, identity, programs, new Set(accept ? programs : []), s.files);
  return { programs, identity, dir, path: entryPath(dir, identity) };
}

/** Rewrites an entry's body (keeping a valid checksum) to pretend it was tampered with. */
async function rewrite(path: string, change: (entry: Record<string, unknown>) => void) {
  const text = Deno.readTextFileSync(path);
  const entry = JSON.parse(text.slice(text.indexOf("\n") + 1));
  change(entry);
  const body = JSON.stringify(entry);
  Deno.writeTextFileSync(path, `${await sha256(new TextEncoder().encode(body))}\n${body}`);
}

Deno.test("a hit gives back the programs of a fresh build, byte for byte, verified", async () => {
  using s = scratch();
  for (const argv of [[], ["-P"], ["-m", "-p", "1"], ["--pidnss"]]) {
    const { programs, identity, dir } = await stored(argv, s);
    const hit = (await readEntry(dir, identity))!;
    ok(hit, `hit for ${argv.join(" ")}`);
    deepEqual(hit.programs.map(shape), programs.map(shape));
    // and the same as building again now
    deepEqual(hit.programs.map(shape), runqlat.programs(argv).map(shape));
    equal(hit.verified.size, programs.length);
    // map references resolve to one declaration per name, as in a build
    for (const p of hit.programs) {
      for (const r of p.mapRefs) {
        ok(p.maps.includes(r.map) || hit.programs.some((q) => q.maps.includes(r.map)));
      }
    }
  }
});

Deno.test("any change of options, kernel, BTF or our code misses", async () => {
  using s = scratch();
  const { identity, dir } = await stored([], s);
  ok(await readEntry(dir, identity));
  // options
  notEqual(identityOf(["-m"]), identity);
  equal(await readEntry(dir, identityOf(["-m"])), undefined);
  equal(await readEntry(dir, identityOf(["-p", "2"])), undefined);
  // kernel release, BTF, build id
  for (
    const kernel of [
      { ...KERNEL, release: "6.18.1" },
      { ...KERNEL, btf: [2, "9feb"] },
      { ...KERNEL, notes: "01" },
      { ...KERNEL, cpus: "0-3" },
    ]
  ) {
    const other = identityOf([], kernel);
    notEqual(other, identity);
    equal(await readEntry(dir, other), undefined);
  }
  // our code: a source file edited (same size, new mtime and ctime)
  await new Promise((r) => setTimeout(r, 20));
  Deno.writeTextFileSync(s.code, "export const x = 2;\n");
  equal(await readEntry(dir, identity), undefined);
});

Deno.test("the environment that builds read (BPFTK_*) is part of the key", () => {
  const before = identityOf([]);
  Deno.env.set("BPFTK_RING_BYTES", "65536");
  try {
    notEqual(identityOf([]), before);
  } finally {
    Deno.env.delete("BPFTK_RING_BYTES");
  }
  equal(identityOf([]), before);
});

Deno.test("a tampered entry is ignored: checksum, owner, mode, identity", async (t) => {
  await t.step("wrong checksum", async () => {
    using s = scratch();
    const { identity, dir, path } = await stored([], s);
    const text = Deno.readTextFileSync(path);
    const changed = text.replace('"name":"runqlat_switch"', '"name":"runqlat_swatch"');
    notEqual(changed, text);
    Deno.writeTextFileSync(path, changed);
    equal(await readEntry(dir, identity), undefined);
  });
  await t.step("readable by others", async () => {
    using s = scratch();
    const { identity, dir, path } = await stored([], s);
    Deno.chmodSync(path, 0o644);
    equal(await readEntry(dir, identity), undefined);
  });
  await t.step({
    name: "another owner",
    ignore: Deno.uid() !== 0,
    fn: async () => {
      using s = scratch();
      const { identity, dir, path } = await stored([], s);
      Deno.chownSync(path, 65534, null);
      equal(await readEntry(dir, identity), undefined);
    },
  });
  await t.step("a symlink to an entry", async () => {
    using s = scratch();
    const { identity, dir, path } = await stored([], s);
    Deno.renameSync(path, `${path}.real`);
    Deno.symlinkSync(`${path}.real`, path);
    equal(await readEntry(dir, identity), undefined);
  });
  await t.step("an entry made for other options, moved in place", async () => {
    using s = scratch();
    const a = await stored([], s);
    const b = await stored(["-m"], s);
    Deno.renameSync(b.path, a.path);
    equal(await readEntry(a.dir, a.identity), undefined);
  });
});

Deno.test("a directory others can write, or not ours, is not used", async (t) => {
  await t.step("mode 0777", () => {
    using s = scratch();
    Deno.mkdirSync(s.dir, { mode: 0o700 });
    Deno.chmodSync(s.dir, 0o777);
    equal(usableCacheDir(s.dir), undefined);
  });
  await t.step("mode 0755", () => {
    using s = scratch();
    Deno.mkdirSync(s.dir);
    Deno.chmodSync(s.dir, 0o755);
    equal(usableCacheDir(s.dir), undefined);
  });
  await t.step("in a world-writable parent without the sticky bit", () => {
    using s = scratch();
    Deno.chmodSync(s.dir.replace(/\/bpftk$/, ""), 0o777);
    equal(usableCacheDir(s.dir), undefined);
  });
  await t.step("a symlink", () => {
    using s = scratch();
    const real = `${s.dir}-real`;
    Deno.mkdirSync(real, { mode: 0o700 });
    Deno.chmodSync(real, 0o700);
    Deno.symlinkSync(real, s.dir);
    equal(usableCacheDir(s.dir), undefined);
  });
  await t.step({
    name: "another owner",
    ignore: Deno.uid() !== 0,
    fn: () => {
      using s = scratch();
      Deno.mkdirSync(s.dir, { mode: 0o700 });
      Deno.chownSync(s.dir, 65534, null);
      equal(usableCacheDir(s.dir), undefined);
    },
  });
  await t.step("made 0700 when missing", () => {
    using s = scratch();
    equal(usableCacheDir(s.dir), s.dir);
    equal(Deno.statSync(s.dir).mode! & 0o777, 0o700);
  });
});

Deno.test("a verdict counts only for the bytes our verifier accepted", async (t) => {
  await t.step("not accepted: stored without a verdict", async () => {
    using s = scratch();
    const { identity, dir, programs } = await stored([], s, false);
    const hit = (await readEntry(dir, identity))!;
    equal(hit.programs.length, programs.length);
    equal(hit.verified.size, 0);
  });
  await t.step("bytes changed (checksum made valid again): not verified", async () => {
    using s = scratch();
    const { identity, dir, path } = await stored([], s);
    await rewrite(path, (entry) => {
      const p = (entry.programs as { code: string }[])[0];
      const bytes = Uint8Array.fromBase64(p.code);
      bytes[8 * 3 + 4] ^= 1; // an immediate
      p.code = bytes.toBase64();
    });
    const hit = (await readEntry(dir, identity))!;
    ok(hit);
    ok(!hit.verified.has(hit.programs[0]), "the changed program must go through our verifier");
    equal(hit.verified.size, hit.programs.length - 1);
  });
});

Deno.test("sha256 is SHA-256", async () => {
  for (const length of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 9999]) {
    const bytes = new Uint8Array(length).map((_, i) => (i * 131 + length) & 0xff);
    const expected = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)).toHex();
    equal(await sha256(bytes), expected, `${length} bytes`);
  }
});

Deno.test("options that cannot be written down exactly are not cached", () => {
  equal(cacheIdentity({ tool: "t", options: { f: () => 1 } }, () => KERNEL), undefined);
  equal(cacheIdentity({ tool: "t", options: { m: new Map() } }, () => KERNEL), undefined);
  equal(stableJson({ b: 1, a: [1n, undefined] }), '{"a":[{"$bigint":"1"},{"$undefined":1}],"b":1}');
  equal(stableJson({ a: undefined }), "{}");
});

Deno.test(
  kernelTest("runqlat through the cache: built and verified, then loaded from it unverified"),
  async () => {
    using s = scratch();
    const { options } = runqlat.parse(["-P"]);
    const reports: { hit: boolean; verifiedNow: string[] }[] = [];
    const start = () =>
      startPrograms(
        { tool: "runqlat", options, build: () => runqlat.programs(["-P"]) },
        { dir: s.dir, codeFiles: s.files, report: (r) => reports.push(r) },
      );
    {
      using session = await start();
      equal(session.programs.length, 3);
    }
    {
      using session = await start();
      equal(session.programs.length, 3);
      // the tool's own declarations find the maps made from the stored copies
      ok(session.maps.size > 0);
    }
    deepEqual(reports.map((r) => r.hit), [false, true]);
    equal(reports[0].verifiedNow.length, 3);
    deepEqual(reports[1].verifiedNow, []);
    // bytes changed under a valid checksum: our verifier runs again for that program
    const path = entryPath(s.dir, cacheIdentity({ tool: "runqlat", options })!);
    await rewrite(path, (entry) => {
      (entry.programs as { verdict: string }[])[2].verdict = "0".repeat(64);
    });
    {
      using _session = await start();
    }
    deepEqual(reports[2], { hit: true, verifiedNow: ["runqlat_switch"] });
  },
);
