/**
 * Runs libbpf-tools' own `print_log2_hist` and `print_linear_hist`, the code
 * compiled into the installed binaries, on inputs of our choosing: gdb starts
 * the binary, stops it before `main`, and jumps into the printer with our
 * arrays in its memory. This checks layouts that live data rarely reaches
 * (bounds above 2^32, huge counts, long unit names) against the real C.
 *
 * gdb's `call` cannot be used on this kernel (it fails restoring the x86
 * extended state), so calls are made by hand: arguments in registers, a return
 * address pointing at a breakpoint, and `continue`.
 *
 * @module
 */
import { run, runOk } from "../../support/process.ts";

/** One call of a C printer. */
export type PrinterCall =
  | { fn: "log2"; vals: number[]; valType: string }
  | { fn: "linear"; vals: number[]; base: number; step: number; valType: string };

/** Addresses (relative to the load base) of what the gdb script needs. */
interface BinaryLayout {
  entry: number;
  log2: number;
  linear: number;
}

const LOG2_ROW_FORMAT = "%*lld -> %-*lld : %-8d |";
const LINEAR_ROW_FORMAT = "        %-10d : %-8d |";

/** Virtual address of a file offset, from the ELF64 program headers. */
function fileOffsetToAddress(elf: Uint8Array, offset: number): number {
  const view = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  const phoff = Number(view.getBigUint64(0x20, true));
  const phentsize = view.getUint16(0x36, true);
  const phnum = view.getUint16(0x38, true);
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (view.getUint32(ph, true) !== 1) continue; // PT_LOAD
    const pOffset = Number(view.getBigUint64(ph + 8, true));
    const pVaddr = Number(view.getBigUint64(ph + 16, true));
    const pFilesz = Number(view.getBigUint64(ph + 32, true));
    if (offset >= pOffset && offset < pOffset + pFilesz) return pVaddr + offset - pOffset;
  }
  throw new Error(`file offset ${offset} is in no PT_LOAD segment`);
}

function indexOfBytes(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/**
 * Start of the function that loads `formatAddress` into a register: walking
 * back from that instruction, the first 16-byte-aligned instruction that
 * follows a `ret` and nothing but padding. Good for a stripped -O2 binary
 * where these printers have a single epilogue placed after their body.
 */
function functionStart(disassembly: string[], formatAddress: number): number {
  const target = `# ${formatAddress.toString(16)} `;
  const use = disassembly.findIndex((line) => line.includes(target));
  if (use < 0) throw new Error(`no instruction refers to 0x${formatAddress.toString(16)}`);
  const parse = (line: string) => /^\s*([0-9a-f]+):\s+(.*)$/.exec(line);
  for (let i = use - 1; i > 0; i--) {
    const here = parse(disassembly[i]);
    if (!here) continue;
    const address = parseInt(here[1], 16);
    if (address % 16 !== 0 || /nop|xchg\s+%ax,%ax|int3/.test(here[2])) continue;
    let j = i - 1;
    while (j > 0 && /nop|xchg\s+%ax,%ax|int3/.test(parse(disassembly[j])?.[2] ?? "")) j--;
    if (/^ret\b/.test((parse(disassembly[j])?.[2] ?? "").trim())) return address;
  }
  throw new Error("could not find the start of the printer function");
}

async function layoutOf(binary: string): Promise<BinaryLayout> {
  const elf = await Deno.readFile(binary);
  const entry = Number(new DataView(elf.buffer).getBigUint64(0x18, true));
  const lines = (await runOk("objdump", ["-d", "--no-show-raw-insn", binary])).split("\n");
  const find = (format: string) => {
    const offset = indexOfBytes(elf, new TextEncoder().encode(format + "\0"));
    if (offset < 0) throw new Error(`${binary} does not contain ${JSON.stringify(format)}`);
    return functionStart(lines, fileOffsetToAddress(elf, offset));
  };
  return { entry, log2: find(LOG2_ROW_FORMAT), linear: find(LINEAR_ROW_FORMAT) };
}

/** The gdb Python script: stop before main, then make every call and record output sizes. */
function gdbScript(binary: string, layout: BinaryLayout, calls: PrinterCall[], out: string) {
  return `
import gdb, json, os, struct
CALLS = json.loads(${JSON.stringify(JSON.stringify(calls))})
OUT = ${JSON.stringify(out)}
gdb.execute("set pagination off")
gdb.execute("set confirm off")
gdb.execute("set breakpoint pending on")
gdb.execute("break __libc_start_main")
gdb.execute("run > " + OUT + " 2>&1 < /dev/null")
base = None
for line in gdb.execute("info proc mappings", to_string=True).splitlines():
    parts = line.split()
    if parts and parts[-1] == ${JSON.stringify(binary)}:
        base = int(parts[0], 16)
        break
inferior = gdb.selected_inferior()
returned_here = base + ${layout.entry}  # _start already ran: a safe place to stop
gdb.Breakpoint("*" + hex(returned_here))
sp = int(gdb.parse_and_eval("$sp"))
data = (sp - 0x40000) & ~0xf
stack_top = (sp - 0x80000) & ~0xf
fflush = int(gdb.parse_and_eval("(long)&fflush"))

def call(fn, *args):
    for reg, arg in zip(["rdi", "rsi", "rdx", "rcx", "r8", "r9"], args):
        gdb.execute("set $%s = %d" % (reg, arg))
    gdb.execute("set $rax = 0")
    inferior.write_memory(stack_top - 8, struct.pack("<Q", returned_here))
    gdb.execute("set $rsp = %d" % (stack_top - 8))
    gdb.execute("set $rip = %d" % fn)
    gdb.execute("continue", to_string=True)
    if int(gdb.parse_and_eval("$pc")) != returned_here:
        raise gdb.GdbError("printer did not return")

sizes = []
for c in CALLS:
    vals = struct.pack("<%dI" % len(c["vals"]), *c["vals"])
    inferior.write_memory(data, vals)
    name = data + len(vals) + 16
    inferior.write_memory(name, c["valType"].encode() + b"\\0")
    if c["fn"] == "log2":
        call(base + ${layout.log2}, data, len(c["vals"]), name)
    else:
        call(base + ${layout.linear}, data, len(c["vals"]), c["base"] & 0xffffffff, c["step"], name)
    call(fflush, 0)
    sizes.append(os.path.getsize(OUT))
print("PRINTER-SIZES " + json.dumps(sizes))
gdb.execute("kill")
`;
}

/**
 * Runs each call through the C printers of `binary` (a libbpf-tools binary,
 * e.g. /usr/sbin/runqlat) and returns what each printed.
 */
export async function runCPrinters(binary: string, calls: PrinterCall[]): Promise<string[]> {
  const layout = await layoutOf(binary);
  const dir = await Deno.makeTempDir({ prefix: "c-printers-" });
  try {
    const out = `${dir}/stdout`;
    const script = `${dir}/calls.py`;
    await Deno.writeTextFile(script, gdbScript(binary, layout, calls, out));
    const result = await run("gdb", ["-batch", "-nx", "-x", script, binary]);
    const log = result.stdout + result.stderr;
    const sizesLine = /^PRINTER-SIZES (.*)$/m.exec(log);
    if (!sizesLine) throw new Error(`gdb did not finish the calls:\n${log}`);
    const sizes: number[] = JSON.parse(sizesLine[1]);
    const bytes = await Deno.readFile(out);
    const texts: string[] = [];
    let start = 0;
    for (const end of sizes) {
      texts.push(new TextDecoder().decode(bytes.subarray(start, end)));
      start = end;
    }
    return texts;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
