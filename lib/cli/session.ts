/**
 * From built programs to attached ones: check privileges, create the maps,
 * patch their fds into the programs, load (kernel verifier log captured),
 * attach. The Session returned owns everything created: close it (or let
 * a `using` scope end) and the links, programs and maps go.
 */
import type { BuiltProgram } from "../dsl/builder.ts";
import { possibleCpus } from "../kernel/map.ts";
import { Btf } from "../btf/btf.ts";
import { formatDiagnostic, optionsForProgram } from "../verifier/built.ts";
import { verify } from "../verifier/verify.ts";
import type { VerifyResult } from "../verifier/types.ts";
import { type LoadOptions, loadPrograms, type OurVerdict, type Session } from "./load.ts";

export {
  annotateVerifierLog,
  type LoadOptions,
  onlineCpus,
  patchMapFds,
  Session,
  SessionMaps,
} from "./load.ts";

/** Our verifier rejected a program that the kernel rejected too: its diagnostic, one line. */
export class ProgramRejected extends Error {
  constructor(readonly program: string, readonly result: VerifyResult) {
    super(formatDiagnostic(program, result.diagnostics[0]));
    this.name = "ProgramRejected";
  }
}

/** Runs our verifier on a built program (offline: no kernel, no root). */
export function verifyBuilt(p: BuiltProgram): VerifyResult {
  const opts = optionsForProgram(p, p.type === "tp_btf" ? Btf.vmlinux() : undefined);
  opts.possibleCpus = possibleCpus();
  opts.allowPointerLeaks = p.allowPointerLeaks ?? false;
  return verify(p.insns, opts);
}

/**
 * Creates maps, loads and attaches every program. Throws on the first failure.
 * Our verifier runs first, so a mistake is reported against the DSL line.
 *
 * @example Count context switches for a second (needs root: not run as a doc test)
 * ```ts ignore
 * import { defineMap } from "../dsl/maps.ts";
 * import { tracepoint } from "../dsl/program.ts";
 * import { r10 } from "../dsl/registers.ts";
 * import { loadAndAttach } from "./session.ts";
 *
 * const switches = defineMap({
 *   name: "switches", type: "percpu_array", keySize: 4, valueSize: 8, maxEntries: 1,
 * });
 * const p = tracepoint("sched", "sched_switch");
 * const key = p.stack(4);
 * p.store("u32", r10, key, 0).counterAdd(switches, key, 1).ret(0);
 * using session = loadAndAttach([p.build()]); // detached, unloaded, freed at scope end
 * await new Promise((resolve) => setTimeout(resolve, 1000));
 * const value = session.maps.get(switches)!.lookup(new Uint8Array(4))!;
 * const perCpu = new BigUint64Array(value.buffer); // a per-CPU map: one u64 per CPU
 * console.log(perCpu.reduce((a, b) => a + b, 0n), "context switches");
 * ```
 */
export function loadAndAttach(programs: BuiltProgram[], opts: LoadOptions = {}): Session {
  return loadPrograms(programs, opts, verifyBeforeLoad);
}

/** Our verifier on a program about to be loaded; under -v, its verdict and diagnostics. */
export function verifyBeforeLoad(p: BuiltProgram, verbose: boolean): OurVerdict {
  const v0 = performance.now();
  const ours = verifyBuilt(p);
  if (verbose) {
    const ms = (performance.now() - v0).toFixed(2);
    console.error(
      `our verifier: ${p.name}: ${
        ours.ok ? "accepted" : "rejected"
      } (${p.insns.length} insns, ${ms} ms)`,
    );
    for (const d of ours.diagnostics) {
      console.error(`our verifier: ${formatDiagnostic(p.name, d)}`);
    }
  }
  return { ok: ours.ok, rejection: () => new ProgramRejected(p.name, ours) };
}
