/** Lazy DSL origins: every instruction names the tool line, through copies and patches. */
import { deepEqual, equal, match } from "node:assert/strict";
import { ProgramBuilder } from "../../../lib/dsl/builder.ts";
import { defineMap } from "../../../lib/dsl/maps.ts";
import { captureOrigin, patched, withOrigin } from "../../../lib/dsl/origin.ts";
import { r0, r1, r10 } from "../../../lib/dsl/registers.ts";
import { patchMapFds } from "../../../lib/cli/session.ts";

const HERE = /^tests\/lib\/dsl\/origin\.test\.ts:(\d+)$/;

function lineOf(origin: string | undefined): number {
  const m = HERE.exec(origin ?? "");
  if (!m) throw new Error(`origin ${origin} is not a line of this file`);
  return Number(m[1]);
}

Deno.test("origins survive label resolution, map fd patches and spreads", () => {
  const map = defineMap({ name: "m", type: "hash", keySize: 4, valueSize: 8, maxEntries: 1 });
  const p = new ProgramBuilder("t", "tracepoint", { kind: "raw_tracepoint", name: "x" });
  p.store("u32", r10, -4, 0);
  p.loadMap(r1, map).mov(r0, 0); // one line, two calls
  p.if(r0, "==", 0, () => p.mov(r1, 1));
  p.ret(0);
  const built = p.build();
  const insns = patchMapFds(built, () => 42);
  const lines = insns.map((i) => lineOf(i.origin));
  const first = lines[0];
  deepEqual(lines, [first, first + 1, first + 1, first + 2, first + 2, first + 3, first + 3]);
  equal(insns[1].imm, 42); // the map load, patched
  equal(insns[3].off, 1); // the jump over the then-branch, resolved
  // A spread copies the text; assigning replaces it.
  match({ ...insns[3] }.origin ?? "", HERE);
  insns[2].origin = "elsewhere.ts:1";
  equal(insns[2].origin, "elsewhere.ts:1");
  equal(built.insns[2].origin, insns[2].origin); // not patched: the same object
});

Deno.test("patched copies keep the capture, the fields and their order", () => {
  const captured = captureOrigin();
  const a = withOrigin({ code: 0xb7, dst: 0, src: 0, off: 0, imm: 0 }, captured);
  const b = patched(a, { imm: 7 });
  equal(b.imm, 7);
  equal(a.imm, 0);
  equal(lineOf((a as { origin?: string }).origin), lineOf((b as { origin?: string }).origin));
  deepEqual(Object.keys(b), ["code", "dst", "src", "off", "imm", "origin"]);
});
