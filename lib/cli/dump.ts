/** `--dump`: the generated programs' disassembly, without loading anything (no root needed). */
import { disassemble } from "../../bytecode/disasm.ts";
import type { BuiltProgram } from "../dsl/builder.ts";
import { patchMapFds } from "./session.ts";

/** Disassembles programs, naming map loads by the map's declared name. */
export function dumpPrograms(programs: BuiltProgram[]): string {
  return programs.map((p) => {
    const maps = [...new Set(p.mapRefs.map((r) => r.map))];
    const insns = patchMapFds(p, (m) => maps.indexOf(m));
    const where = p.attach.kind === "tracepoint"
      ? `${p.attach.category}:${p.attach.name}`
      : "name" in p.attach
      ? p.attach.name
      : p.attach.kind;
    const lines = disassemble(insns, { mapName: (fd: number) => `map[${maps[fd]?.name}]` });
    return `${p.name}: ${p.type} ${where}, ${insns.length} instructions\n${lines.join("\n")}\n`;
  }).join("\n");
}
