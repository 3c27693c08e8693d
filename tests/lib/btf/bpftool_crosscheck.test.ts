/**
 * Cross-checks the BTF parser against bpftool: every type of the running
 * kernel's vmlinux BTF, rendered in `bpftool btf dump format raw` form, must
 * equal bpftool's own output line for line.
 */
import assert from "node:assert/strict";
import { Btf, type BtfType } from "../../../lib/btf/mod.ts";
import { runSync } from "../../support/process.ts";

const VMLINUX = "/sys/kernel/btf/vmlinux";

function bpftoolRawDump(path: string): string[] {
  const out = runSync("bpftool", ["btf", "dump", "file", path, "format", "raw"]);
  if (out.code !== 0) throw new Error(`bpftool failed: ${out.stderr}`);
  return out.stdout.split("\n").filter((l) => l !== "");
}

const LINKAGE = ["static", "global", "extern"];
const q = (name: string) => `'${name || "(anon)"}'`;

/** One type in bpftool's raw dump syntax (bpftool's dump_btf_type). */
function renderRaw(btf: Btf, t: BtfType): string[] {
  const head = `[${t.id}] ${t.kind} ${q(t.name)}`;
  switch (t.kind) {
    case "VOID":
      return [];
    case "INT": {
      const encoding = t.signed ? "SIGNED" : t.char ? "CHAR" : t.bool ? "BOOL" : "(none)";
      return [
        `${head} size=${t.size} bits_offset=${t.bitOffset} nr_bits=${t.bits} encoding=${encoding}`,
      ];
    }
    case "PTR":
    case "CONST":
    case "VOLATILE":
    case "RESTRICT":
    case "TYPEDEF":
    case "TYPE_TAG":
      return [`${head} type_id=${t.type}`];
    case "ARRAY":
      return [`${head} type_id=${t.type} index_type_id=${t.indexType} nr_elems=${t.nelems}`];
    case "STRUCT":
    case "UNION":
      return [
        `${head} size=${t.size} vlen=${t.members.length}`,
        ...t.members.map((m) =>
          `\t${q(m.name)} type_id=${m.type} bits_offset=${m.bitOffset}` +
          (m.bitfieldSize ? ` bitfield_size=${m.bitfieldSize}` : "")
        ),
      ];
    case "ENUM":
      return [
        `${head} encoding=${
          t.signed ? "SIGNED" : "UNSIGNED"
        } size=${t.size} vlen=${t.values.length}`,
        ...t.values.map((v) => `\t${q(v.name)} val=${v.value}`),
      ];
    case "ENUM64":
      return [
        `${head} encoding=${
          t.signed ? "SIGNED" : "UNSIGNED"
        } size=${t.size} vlen=${t.values.length}`,
        ...t.values.map((v) => `\t${q(v.name)} val=${v.value}${t.signed ? "LL" : "ULL"}`),
      ];
    case "FWD":
      return [`${head} fwd_kind=${t.union ? "union" : "struct"}`];
    case "FUNC":
      return [`${head} type_id=${t.type} linkage=${LINKAGE[t.linkage]}`];
    case "FUNC_PROTO": {
      const params = t.params.map((p) => `\t${q(p.name)} type_id=${p.type}`);
      if (t.variadic) params.push(`\t'(anon)' type_id=0`);
      return [`${head} ret_type_id=${t.returnType} vlen=${params.length}`, ...params];
    }
    case "VAR":
      return [`${head} type_id=${t.type}, linkage=${LINKAGE[t.linkage]}`];
    case "DATASEC":
      return [
        `${head} size=${t.size} vlen=${t.vars.length}`,
        ...t.vars.map((v) =>
          `\ttype_id=${v.type} offset=${v.offset} size=${v.size} (${btf.kindOf(v.type)} ${
            q(btf.nameOf(v.type))
          })`
        ),
      ];
    case "FLOAT":
      return [`${head} size=${t.size}`];
    case "DECL_TAG":
      return [`${head} type_id=${t.type} component_idx=${t.componentIdx}`];
  }
}

Deno.test("every vmlinux type decodes exactly as bpftool dumps it", () => {
  const expected = bpftoolRawDump(VMLINUX);
  const btf = Btf.vmlinux();
  const actual: string[] = [];
  for (let id = 1; id <= btf.typeCount; id++) actual.push(...renderRaw(btf, btf.type(id)));
  assert.ok(btf.typeCount > 10000, `vmlinux has ${btf.typeCount} types`);
  const n = Math.max(actual.length, expected.length);
  for (let i = 0; i < n; i++) {
    if (actual[i] !== expected[i]) {
      assert.fail(`line ${i + 1} differs:\n  bpftool: ${expected[i]}\n  ours:    ${actual[i]}`);
    }
  }
});

/** bpftool's member lines of struct `name`: member name -> bits_offset / bitfield_size. */
function bpftoolMembers(lines: string[], name: string) {
  const start = lines.findIndex((l) => new RegExp(`^\\[\\d+\\] STRUCT '${name}' `).test(l));
  assert.ok(start >= 0, `bpftool dump has struct ${name}`);
  const members = new Map<string, { bitOffset: number; bitfieldSize: number; typeId: number }>();
  for (let i = start + 1; lines[i]?.startsWith("\t"); i++) {
    const m = /^\t'([^']*)' type_id=(\d+) bits_offset=(\d+)(?: bitfield_size=(\d+))?/.exec(
      lines[i],
    );
    if (m) {
      members.set(m[1], {
        typeId: Number(m[2]),
        bitOffset: Number(m[3]),
        bitfieldSize: Number(m[4] ?? 0),
      });
    }
  }
  return members;
}

Deno.test("task_struct offsets agree with bpftool", () => {
  const lines = bpftoolRawDump(VMLINUX);
  const btf = Btf.vmlinux();
  const members = bpftoolMembers(lines, "task_struct");
  for (const name of ["pid", "tgid", "__state", "comm", "nsproxy", "real_parent", "se"]) {
    const m = members.get(name);
    assert.ok(m, `bpftool lists task_struct.${name}`);
    const f = btf.field("task_struct", name);
    assert.equal(f.offset * 8, m.bitOffset, `task_struct.${name} offset`);
    assert.equal(f.typeId, m.typeId, `task_struct.${name} type`);
  }
  const inIowait = members.get("in_iowait")!;
  const f = btf.field("task_struct", "in_iowait");
  assert.equal(f.bitSize, inIowait.bitfieldSize);
  assert.equal(f.offset * 8 + f.bitOffset!, inIowait.bitOffset);
});
