/**
 * The syscall numbers lib/dsl/raw_syscalls.ts carries, against the kernel
 * uapi headers of linux-libc-dev (x86-64's unistd_64.h, asm-generic's
 * unistd.h for arm64) where they are installed.
 */
import { deepEqual, throws } from "node:assert/strict";
import { syscallNr, syscallTable } from "../../../lib/dsl/raw_syscalls.ts";
import { IN_CI } from "../../support/kernel.ts";

function headerNumbers(path: string): Map<string, number> | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
  const numbers = new Map<string, number>();
  for (const m of text.matchAll(/^#define __NR_(\w+)\s+(\d+)\s*$/gm)) {
    numbers.set(m[1], Number(m[2]));
  }
  return numbers;
}

const HEADERS: [string, string[]][] = [
  ["x86_64", ["/usr/include/x86_64-linux-gnu/asm/unistd_64.h", "/usr/include/asm/unistd_64.h"]],
  ["aarch64", ["/usr/include/asm-generic/unistd.h"]],
];

// linux-libc-dev has both headers on every architecture (.ci/install --test
// installs it): in CI a missing header fails; elsewhere the test is ignored
// with a note.
for (const [arch, paths] of HEADERS) {
  const header = paths.map(headerNumbers).find((h) => h !== undefined);
  const name = `syscall numbers for ${arch} match the uapi header`;
  if (!header && !IN_CI) console.warn(`skipping '${name}': no ${paths.join(" or ")}`);
  Deno.test({ name, ignore: !header && !IN_CI }, () => {
    if (!header) throw new Error(`no ${paths.join(" or ")} (apt-get install linux-libc-dev)`);
    const table = syscallTable(arch);
    deepEqual(
      Object.fromEntries(Object.keys(table).map((name) => [name, header.get(name)])),
      table,
    );
  });
}

Deno.test("syscallNr: syscalls an architecture lacks are undefined; unknown arches throw", () => {
  deepEqual([syscallNr("open", "aarch64"), syscallNr("openat", "aarch64")], [undefined, 56]);
  throws(() => syscallTable("riscv64"), /riscv64/);
});
