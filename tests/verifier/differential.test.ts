/**
 * Differential test: thousands of generated programs, each verified by ours
 * and loaded into the kernel. Ours must never accept a program the kernel
 * rejects. Programs the kernel accepts and we reject (our stricter policies,
 * or less precise ranges) must stay under 5% in all, under a cap for each
 * diagnostic code, and under a cap among the programs using each
 * instruction class, so that no single code or class hides behind the total.
 * Where both reject, the failing instruction is compared too.
 *
 * Each run takes a fresh seed and prints it; VERIFIER_SEED=<n> replays a
 * run, VERIFIER_PROGRAMS=<n> changes its size (default 2500).
 * Disagreements are written to a temporary directory (printed), never into
 * the checkout; copy one into corpus/found/ to keep it.
 */
import { ok } from "node:assert/strict";
import { disassemble } from "../../bytecode/disasm.ts";
import { encode } from "../../bytecode/encode.ts";
import { kernelTest } from "../support/kernel.ts";
import type { FoundCase } from "./corpus.ts";
import { generate, type GeneratedCase, type TaskFields } from "./generator.ts";
import {
  closeHarnessMaps,
  kernel,
  type KernelVerdict,
  lastLogLine,
  ours,
  vmlinux,
} from "./harness.ts";
import { classesOf, INSN_CLASSES } from "./insn_classes.ts";
import { POLICY_CODES } from "./policy.ts";

const SEED = Number(
  Deno.env.get("VERIFIER_SEED") ?? crypto.getRandomValues(new Uint32Array(1))[0],
);
const PROGRAMS = Number(Deno.env.get("VERIFIER_PROGRAMS") ?? 2500);
const MAX_FALSE_REJECT_RATE = 0.05;
/** Largest share of the kernel's accepts that one diagnostic code may refuse. */
const MAX_PER_CODE = 0.015;
/** ... and for the policy codes, which refuse on purpose (uninitialized stack reads...). */
const MAX_PER_POLICY_CODE = 0.03;
/**
 * Largest false reject rate among the kernel-accepted programs that use one
 * class: far above the few percent of chance, far below a class refused whole.
 */
const MAX_PER_CLASS = 0.25;
/** A class is judged once this many kernel-accepted programs use it (every class must be). */
const MIN_CLASS_PROGRAMS = 10;
/** Where both reject, the share that must fail at the kernel's instruction. */
const MIN_SAME_INSN = 0.85;
/** Disagreements written per diagnostic code (false accepts: all). */
const SAVED_PER_CODE = 3;

function taskFields(): TaskFields {
  const { btf } = vmlinux();
  const f = (p: string) => btf.field("task_struct", p).offset;
  return {
    scalars: [[f("pid"), 4], [f("tgid"), 4], [f("prio"), 4], [f("flags"), 4]],
    pointers: [f("real_parent"), f("group_leader")],
    size: btf.sizeOf(btf.getId("task_struct", "STRUCT")),
  };
}

/** The slot of the instruction the kernel's log stops at (its last "N: (op)" line). */
export function kernelFailingSlot(log: string | undefined): number | undefined {
  const lines = (log ?? "").split("\n");
  for (let i = lines.length - 1; i >= 0; i--) {
    const m = /^(\d+): \([0-9a-f]{2}\)/.exec(lines[i]);
    if (m) return Number(m[1]);
  }
  return undefined;
}

let outDir: string | undefined;

async function save(c: GeneratedCase, expect: string, k: KernelVerdict, note: string) {
  outDir ??= await Deno.makeTempDir({ prefix: "bpftk-differential-" });
  const found: FoundCase = {
    name: c.name,
    progType: c.progType,
    tpBtf: c.tpBtf,
    insns: c.insns.map(({ code, dst, src, off, imm, imm2 }) =>
      imm2 === undefined ? { code, dst, src, off, imm } : { code, dst, src, off, imm, imm2 }
    ),
    maps: c.maps ?? [],
    mapRefs: c.mapRefs ?? [],
    expect,
    kernel: k.ok ? "accept" : "reject",
    disasm: disassemble(c.insns),
    kernelLog: lastLogLine(k.log),
    note: `${note}; recipe ${c.recipe.join(",")}`,
  };
  const file = `${outDir}/${c.name}.json`;
  await Deno.writeTextFile(file, JSON.stringify(found, null, 1) + "\n");
  return file;
}

Deno.test("generator: deterministic for a seed", () => {
  const a = generate(7, 3), b = generate(7, 3);
  ok(JSON.stringify(a.insns) === JSON.stringify(b.insns));
});

Deno.test(
  kernelTest(`differential: ${PROGRAMS} random programs (seed ${SEED}) against the kernel`),
  async () => {
    console.log(`seed ${SEED}: replay with VERIFIER_SEED=${SEED}`);
    const task = taskFields();
    let bothOk = 0, bothReject = 0, sameInsn = 0, comparable = 0, mutated = 0;
    const falseAccepts: string[] = [];
    const falseRejects = new Map<string, number>();
    const savedByCode = new Map<string, number>();
    /** Per class: kernel-accepted programs using it, and our (non-policy) rejects of them. */
    const byClass = new Map<string, { accepted: number; rejected: number }>();
    let oursMs = 0, kernelMs = 0, processed = 0, slots = 0;
    try {
      for (let n = 0; n < PROGRAMS; n++) {
        const c = generate(SEED, n, task);
        if (c.recipe.some((r) => r.startsWith("mutate"))) mutated++;
        let t = performance.now();
        const o = ours(c);
        oursMs += performance.now() - t;
        processed += o.processed;
        slots += encode(c.insns).length / 8;
        t = performance.now();
        const k = kernel(c);
        kernelMs += performance.now() - t;
        if (k.ok) {
          const policy = !o.ok && POLICY_CODES.has(o.diagnostics[0].code);
          for (const name of classesOf(c.insns)) {
            const s = byClass.get(name) ?? { accepted: 0, rejected: 0 };
            s.accepted++;
            if (!o.ok && !policy) s.rejected++;
            byClass.set(name, s);
          }
        }
        if (o.ok && k.ok) bothOk++;
        else if (!o.ok && !k.ok) {
          bothReject++;
          const slot = kernelFailingSlot(k.log);
          if (slot !== undefined) {
            comparable++;
            if (slot === o.diagnostics[0].index) sameInsn++;
          }
        } else if (o.ok) {
          const path = await save(c, "error", k, "false accept: the kernel rejects it");
          falseAccepts.push(
            `${c.name} (${c.progType}): kernel says "${lastLogLine(k.log)}"; saved ${path}`,
          );
        } else {
          const code = o.diagnostics[0].code;
          falseRejects.set(code, (falseRejects.get(code) ?? 0) + 1);
          if ((savedByCode.get(code) ?? 0) < SAVED_PER_CODE) {
            savedByCode.set(code, (savedByCode.get(code) ?? 0) + 1);
            await save(c, code, k, `false reject: ${o.diagnostics[0].message}`);
          }
        }
      }
    } finally {
      closeHarnessMaps();
    }
    const kernelAccepts = [...falseRejects.values()].reduce((a, b) => a + b, 0) + bothOk;
    const fr = kernelAccepts - bothOk;
    const rate = fr / kernelAccepts;
    console.log(
      `${PROGRAMS} programs (${mutated} with a nudged field): ${bothOk} accepted by both, ` +
        `${bothReject} rejected by both (the same failing instruction in ${sameInsn} of the ` +
        `${comparable} the kernel's log names), ${falseAccepts.length} false accepts, ` +
        `${fr} false rejects (${(rate * 100).toFixed(2)}% of the programs the kernel accepts)`,
    );
    console.log(`false rejects by code: ${JSON.stringify(Object.fromEntries(falseRejects))}`);
    console.log(
      `kernel-accepted programs per class (our non-policy rejects): ${
        INSN_CLASSES.map(([name]) => {
          const s = byClass.get(name);
          return `${name} ${s?.accepted ?? 0} (${s?.rejected ?? 0})`;
        }).join(", ")
      }`,
    );
    if (outDir) console.log(`disagreements written to ${outDir}`);
    console.log(
      `ours: ${oursMs.toFixed(0)} ms for ${processed} simulated instructions ` +
        `(${
          ((oursMs * 1e6) / Math.max(processed, 1)).toFixed(0)
        } ns each, ${slots} program slots); ` +
        `kernel loads: ${kernelMs.toFixed(0)} ms`,
    );
    const replay = `(replay: VERIFIER_SEED=${SEED})`;
    ok(falseAccepts.length === 0, `false accepts ${replay}:\n${falseAccepts.join("\n")}`);
    ok(
      bothOk > PROGRAMS / 4 && bothReject > PROGRAMS / 8,
      "the generator makes both valid and invalid programs",
    );
    ok(
      rate < MAX_FALSE_REJECT_RATE,
      `false reject rate ${(rate * 100).toFixed(2)}% is not under 5% ${replay}`,
    );
    const overCode = [...falseRejects].filter(([code, n]) =>
      n > kernelAccepts * (POLICY_CODES.has(code) ? MAX_PER_POLICY_CODE : MAX_PER_CODE)
    );
    ok(
      overCode.length === 0,
      `codes refusing too many kernel-accepted programs ${replay}: ${JSON.stringify(overCode)}`,
    );
    const overClass = [...byClass].filter(([, s]) =>
      s.accepted >= MIN_CLASS_PROGRAMS && s.rejected > s.accepted * MAX_PER_CLASS
    );
    ok(
      overClass.length === 0,
      `instruction classes we refuse too often ${replay}: ${JSON.stringify(overClass)}`,
    );
    ok(
      sameInsn >= comparable * MIN_SAME_INSN,
      `both reject, but only ${sameInsn} of ${comparable} at the kernel's instruction ${replay}`,
    );
    const unseen = INSN_CLASSES.map(([name]) => name).filter((name) =>
      (byClass.get(name)?.accepted ?? 0) < MIN_CLASS_PROGRAMS
    );
    ok(unseen.length === 0, `the generator rarely makes valid programs with ${unseen.join(", ")}`);
  },
);
