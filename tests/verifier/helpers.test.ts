/**
 * Helper availability against the kernel: for every helper id and program
 * type, a program that just calls it is loaded. Where the kernel says the
 * program type cannot use the helper, ours must say so too (no false
 * accepts); the converse is counted (ours may refuse helpers whose argument
 * kinds it does not model).
 */
import { deepEqual } from "node:assert/strict";
import * as B from "../../bytecode/build.ts";
import { HELPERS } from "../../bytecode/helpers.ts";
import type { ProgTypeName } from "../../bytecode/prog_types.ts";
import { helperAllowed } from "../../lib/verifier/calls.ts";
import { kernelTest } from "../support/kernel.ts";
import { kernel } from "./harness.ts";

const TYPES: ProgTypeName[] = [
  "tracepoint",
  "kprobe",
  "perf_event",
  "raw_tracepoint",
  "tp_btf",
  "socket_filter",
];
const REFUSED =
  /unknown func|cannot use helper|invalid func|not supported for program type|not allowed in probe/;

Deno.test(
  kernelTest("helpers: we never allow a helper the kernel refuses for the program type"),
  () => {
    const falseAccepts: string[] = [];
    let refusedByUsOnly = 0;
    for (const type of TYPES) {
      for (const h of HELPERS) {
        const k = kernel({
          name: "helper_avail",
          progType: type,
          insns: [B.call(h.id), B.mov64Imm(0, 0), B.exit()],
        });
        const kernelRefuses = !k.ok && REFUSED.test(k.log ?? "");
        const ours = helperAllowed(h, type);
        if (ours && kernelRefuses) falseAccepts.push(`${type}: ${h.name} (${h.id})`);
        if (!ours && !kernelRefuses) refusedByUsOnly++;
      }
    }
    console.log(
      `${
        TYPES.length * HELPERS.length
      } helper/program-type pairs; ${refusedByUsOnly} allowed by the kernel but not by us`,
    );
    deepEqual(falseAccepts, []);
  },
);
