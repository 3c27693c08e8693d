/**
 * Every program of every tool (default build and the flag variants that
 * change the programs), as built for this kernel: accepted by our verifier
 * and by the kernel. Programs come from each tool's `--dump` with
 * BPFTK_DUMP=json (lib/cli/dump.ts); until that hook exists the test is
 * skipped with a warning.
 */
import { deepEqual, ok } from "node:assert/strict";
import { encode } from "../../bytecode/encode.ts";
import { Btf } from "../../lib/btf/btf.ts";
import { tpBtfTarget } from "../../lib/btf/tp_btf.ts";
import { BpfLoadError } from "../../lib/kernel/errors.ts";
import { createMap, possibleCpus } from "../../lib/kernel/map.ts";
import { loadProgram } from "../../lib/kernel/program.ts";
import {
  formatDiagnostic,
  type VerifiableProgram,
  verifyProgram,
} from "../../lib/verifier/built.ts";
import type { MapInfo } from "../../lib/verifier/mod.ts";
import { kernelTest } from "../support/kernel.ts";

const root = new URL("../../", import.meta.url);

/** Flag combinations that change the generated programs. */
const VARIANTS: Record<string, string[][]> = {
  runqlat: [["-P"], ["-L"], ["--pidnss"], ["-p", "1"], ["-c", "/sys/fs/cgroup"]],
  biolatency: [["-Q"], ["-D"], ["-F"], ["-c", "/sys/fs/cgroup"]],
  bitesize: [["-c", "deno"]],
  execsnoop: [["-x"], ["-u", "0"], ["-n", "sh"], ["-P", "1"], ["--max-args", "5"]],
  opensnoop: [["-x"], ["-p", "1"], ["-t", "1"], ["-u", "0"], ["-d", "1"], ["-n", "sh"]],
  tcpsynbl: [["-4"], ["-6"]],
};

interface Built {
  tool: string;
  args: string[];
  programs: VerifiableProgram[];
}

async function dump(tool: string, args: string[]): Promise<VerifiableProgram[] | string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(`tools/${tool}.ts`, root).pathname, "--dump", ...args],
    env: { BPFTK_DUMP: "json" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  if (!out.success) return new TextDecoder().decode(out.stderr).trim().split("\n")[0];
  try {
    return JSON.parse(text);
  } catch {
    return "no-json";
  }
}

function tools(): string[] {
  return [...Deno.readDirSync(new URL("tools/", root))]
    .filter((e) => e.isFile && e.name.endsWith(".ts"))
    .map((e) => e.name.slice(0, -3))
    .sort();
}

let built: Built[] | undefined;
let hookMissing = false;

async function buildAll(): Promise<Built[]> {
  if (built) return built;
  built = [];
  for (const tool of tools()) {
    for (const args of [[], ...(VARIANTS[tool] ?? [])]) {
      const r = await dump(tool, args);
      if (r === "no-json") {
        hookMissing = true;
        return built;
      }
      if (typeof r === "string") {
        // Not buildable on this kernel (e.g. needs kprobes): nothing to verify.
        console.warn(`${tool} ${args.join(" ")}: ${r}`);
        continue;
      }
      built.push({ tool, args, programs: r });
    }
  }
  return built;
}

// Probe the hook once, before declaring the tests.
const probe = await dump("runqlat", []);
const ignore = probe === "no-json";
if (ignore) {
  console.warn("tools.test.ts skipped: lib/cli/dump.ts does not honor BPFTK_DUMP=json yet");
}

Deno.test({
  name: "tools: every program of every tool passes our verifier",
  ignore,
  async fn() {
    const all = await buildAll();
    ok(!hookMissing);
    const btf = Btf.vmlinux();
    const cpus = possibleCpus();
    const rejected: string[] = [];
    let n = 0, insns = 0, ms = 0;
    for (const b of all) {
      for (const p of b.programs) {
        const t0 = performance.now();
        const r = verifyProgram(p, btf, cpus);
        ms += performance.now() - t0;
        n++;
        insns += p.insns.length;
        for (const d of r.diagnostics) {
          rejected.push(`${b.tool} ${b.args.join(" ")}: ${formatDiagnostic(p.name, d)}`);
        }
      }
    }
    console.log(`${n} programs, ${insns} instructions, verified in ${ms.toFixed(1)} ms`);
    ok(n > 0);
    deepEqual(rejected, []);
  },
});

Deno.test({
  ...kernelTest("tools: every program of every tool loads into the kernel"),
  ignore: ignore || kernelTest("").ignore,
  async fn() {
    const all = await buildAll();
    const failures: string[] = [];
    const seen = new Set<string>();
    for (const b of all) {
      for (const p of b.programs) {
        const key = [...encode(p.insns)].join(",");
        if (seen.has(key)) continue;
        seen.add(key);
        const maps = new Map<string, ReturnType<typeof createMap>>();
        const insns = p.insns.map((i) => ({ ...i }));
        try {
          for (const r of p.mapRefs) {
            const m: MapInfo = r.map;
            const k = JSON.stringify(m);
            if (!maps.has(k)) {
              maps.set(k, createMap({ ...m, name: m.name ?? "t", flags: m.flags }));
            }
            insns[r.index].imm = maps.get(k)!.fd;
          }
          const prog = loadProgram({
            name: p.name,
            type: p.type,
            insns,
            attachBtfId: p.type === "tp_btf" && p.attach.name
              ? tpBtfTarget(p.attach.name).typedefId
              : undefined,
          });
          prog.close();
        } catch (e) {
          const why = e instanceof BpfLoadError
            ? e.log.trim().split("\n").slice(-3).join(" | ")
            : String(e);
          failures.push(`${b.tool} ${b.args.join(" ")} ${p.name}: ${why}`);
        } finally {
          for (const m of maps.values()) m.close();
        }
      }
    }
    deepEqual(failures, []);
  },
});
