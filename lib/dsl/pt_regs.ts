/**
 * Probes on functions (uprobes, kprobes): their context is the CPU's
 * registers at the probe, a `struct pt_regs`. On x86_64 the System V calling
 * convention puts the first six integer arguments in rdi, rsi, rdx, rcx, r8,
 * r9 and the return value in rax; their offsets in pt_regs come from the
 * kernel's BTF (a fixed table when BTF is absent: the layout is uapi).
 *
 * `uprobe()` makes a Probe on a function of an ELF file (by symbol name or
 * file offset), `usdt()` one Probe per site of a SystemTap SDT probe, whose
 * arguments `usdtArg()` reads as the note's argument spec says.
 *
 * @example
 * ```ts
 * import { retval, uprobe } from "./pt_regs.ts";
 * import { r7 } from "./registers.ts";
 * const p = uprobe("/bin/bash", "readline", { retprobe: true, name: "bashreadline" });
 * retval(p, r7); // r7 = the returned char * (a user address)
 * ```
 *
 * @module
 */
import { ElfFile, ElfFormatError, type UsdtArg, type UsdtProbe } from "../symbols/elf.ts";
import { Probe } from "./program.ts";
import { kernelLayouts, type Layouts } from "./layouts.ts";
import { CTX, r1, r10, r2, r3, type Reg } from "./registers.ts";

/** pt_regs field names of the six argument registers, in order (x86_64). */
export const ARG_REGISTERS = ["di", "si", "dx", "cx", "r8", "r9"] as const;
/** pt_regs field of the return value (x86_64). */
const RETURN_REGISTER = "ax";

/** x86_64 uapi `struct pt_regs` field order (arch/x86/include/uapi/asm/ptrace.h), 8 bytes each. */
const PT_REGS_FIELDS = [
  "r15",
  "r14",
  "r13",
  "r12",
  "bp",
  "bx",
  "r11",
  "r10",
  "r9",
  "r8",
  "ax",
  "cx",
  "dx",
  "si",
  "di",
  "orig_ax",
  "ip",
  "cs",
  "flags",
  "sp",
  "ss",
] as const;

/** A function-probe program of this name cannot be built (missing symbol, wrong arch). */
export class ProbeTargetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProbeTargetError";
  }
}

function requireX86_64(): void {
  if (Deno.build.arch !== "x86_64") {
    throw new ProbeTargetError(
      `reading probe arguments is implemented for x86_64 only, not ${Deno.build.arch}`,
    );
  }
}

/**
 * The pt_regs field an x86-64 register name lives in: "rdi"/"edi"/"di" -> "di",
 * "r8d"/"r8w"/"r8b" -> "r8", "al" -> "ax". Undefined for registers pt_regs
 * does not hold whole (ah, bh...: the high byte) or does not hold at all.
 */
export function ptRegsField(register: string): string | undefined {
  const r = register.replace(/^%/, "").toLowerCase();
  let m: RegExpMatchArray | null;
  if ((m = r.match(/^r(8|9|1[0-5])[dwb]?$/))) return `r${m[1]}`;
  if ((m = r.match(/^[re]?(ax|bx|cx|dx|si|di|bp|sp|ip)$/))) return m[1];
  if ((m = r.match(/^([abcd])l$/))) return `${m[1]}x`;
  if ((m = r.match(/^(si|di|bp|sp)l$/))) return m[1];
  return undefined;
}

/** Offset of a pt_regs field ("di", "ax"...) from BTF, or the uapi table without BTF. */
export function ptRegsOffset(field: string, layouts: Layouts = kernelLayouts): number {
  requireX86_64();
  try {
    return layouts.structField("pt_regs", field).offset;
  } catch {
    const i = (PT_REGS_FIELDS as readonly string[]).indexOf(field);
    if (i < 0) throw new ProbeTargetError(`struct pt_regs has no register '${field}'`);
    return 8 * i;
  }
}

/** dst = the value of register `field` ("di", "ax", "sp"...) at the probe. */
export function reg(p: Probe, dst: Reg, field: string): Probe {
  return p.load(dst, "u64", CTX, ptRegsOffset(field, p.layouts));
}

/** dst = integer/pointer argument `n` (0..5) of the probed function, at entry. */
export function arg(p: Probe, dst: Reg, n: number): Probe {
  if (!Number.isInteger(n) || n < 0 || n >= ARG_REGISTERS.length) {
    throw new ProbeTargetError(`argument ${n}: only arguments 0..5 are in registers`);
  }
  return reg(p, dst, ARG_REGISTERS[n]);
}

/** dst = the probed function's return value (in a return probe). */
export function retval(p: Probe, dst: Reg): Probe {
  return reg(p, dst, RETURN_REGISTER);
}

/** Options of {@link uprobe} and {@link usdt}. */
export interface UprobeOptions {
  /** A return probe (uretprobe): runs when the function returns. */
  retprobe?: boolean;
  /** Only this process (default: every process that maps the file). */
  pid?: number;
  /** The program's name (kernel limit: 15 characters shown). */
  name?: string;
  /** Layouts (tests); default: the running kernel's. */
  layouts?: Layouts;
}

/** Where a uprobe goes: the file and the file offset, resolved from a symbol or given. */
interface UprobeLocation {
  path: string;
  offset: number;
  /** The symbol, when given by name. */
  symbol?: string;
}

/** The ELF file at `path`, or a one-line ProbeTargetError when it is missing or not ELF. */
function openElf(path: string): ElfFile {
  try {
    return ElfFile.open(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new ProbeTargetError(`${path}: no such file`);
    if (e instanceof ElfFormatError) throw new ProbeTargetError(e.message);
    throw e;
  }
}

/**
 * Resolves `symbolOrOffset` in the ELF file at `binaryPath` to a file offset
 * (a number is taken as a file offset already). Throws a ProbeTargetError
 * naming the file when it does not define the symbol.
 */
function uprobeLocation(
  binaryPath: string,
  symbolOrOffset: string | number,
): UprobeLocation {
  if (typeof symbolOrOffset === "number") return { path: binaryPath, offset: symbolOrOffset };
  const elf = openElf(binaryPath);
  const sym = elf.symbol(symbolOrOffset);
  if (!sym || (sym.type !== "FUNC" && sym.type !== "IFUNC" && sym.type !== "NOTYPE")) {
    throw new ProbeTargetError(`${binaryPath} has no function '${symbolOrOffset}'`);
  }
  const offset = elf.vaddrToFileOffset(sym.value);
  if (offset === undefined) {
    throw new ProbeTargetError(
      `${binaryPath}: '${symbolOrOffset}' (0x${sym.value.toString(16)}) is in no loaded segment`,
    );
  }
  return { path: binaryPath, offset, symbol: symbolOrOffset };
}

/**
 * A kprobe-type program on a user-space function: entry (uprobe) or return
 * (uretprobe), for one process or all. Read arguments with {@link arg} and the
 * return value with {@link retval}.
 *
 * @example Count calls of malloc() for 1 MiB or more, in every process using this libc
 * ```ts
 * import { defineMap } from "./maps.ts";
 * import { arg, uprobe } from "./pt_regs.ts";
 * import { r10, r7 } from "./registers.ts";
 *
 * const big = defineMap({
 *   name: "big", type: "percpu_array", keySize: 4, valueSize: 8, maxEntries: 1,
 * });
 * const p = uprobe("/lib/x86_64-linux-gnu/libc.so.6", "malloc");
 * const key = p.stack(4);
 * arg(p, r7, 0).returnIf(r7, "<", 1 << 20); // r7 = the size asked for
 * p.store("u32", r10, key, 0).counterAdd(big, key, 1).ret(0);
 * const program = p.build();
 * ```
 */
export function uprobe(
  binaryPath: string,
  symbolOrOffset: string | number,
  opts: UprobeOptions = {},
): Probe {
  requireX86_64();
  const loc = uprobeLocation(binaryPath, symbolOrOffset);
  const retprobe = !!opts.retprobe;
  const name = opts.name ?? (retprobe ? "uretprobe" : "uprobe");
  return new Probe(
    name,
    "kprobe",
    {
      kind: "uprobe",
      path: loc.path,
      offset: loc.offset,
      retprobe,
      ...(opts.pid === undefined ? {} : { pid: opts.pid }),
    },
    { kind: "none" },
    opts.layouts ?? kernelLayouts,
  );
}

/** A program on one site of a USDT probe: a uprobe that can read the probe's arguments. */
export class UsdtProgram extends Probe {
  /** {@link usdt} makes these, one per probe site; `note` is the site's .note.stapsdt entry. */
  constructor(
    readonly note: UsdtProbe,
    name: string,
    path: string,
    layouts: Layouts,
    pid?: number,
    kernelSemaphore = false,
  ) {
    super(
      name,
      "kprobe",
      {
        kind: "uprobe",
        path,
        offset: note.fileOffset,
        retprobe: false,
        ...(pid === undefined ? {} : { pid }),
        ...(kernelSemaphore && note.semaphoreFileOffset
          ? { refCtrOffset: note.semaphoreFileOffset }
          : {}),
      },
      { kind: "none" },
      layouts,
    );
  }

  /**
   * dst = USDT argument `n` (0-based), sign- or zero-extended to 64 bits as
   * the spec says: a register, a constant, or memory at register + offset
   * (read with bpf_probe_read_user; 0 when unreadable). Clobbers r0-r5.
   */
  usdtArg(dst: Reg, n: number): this {
    const a = this.note.args[n];
    if (!a) {
      throw new ProbeTargetError(
        `USDT ${this.note.provider}:${this.note.name} has ${this.note.args.length} arguments, not ${
          n + 1
        }`,
      );
    }
    readUsdtArg(this, dst, a, this.note);
    return this;
  }
}

function readUsdtArg(p: Probe, dst: Reg, a: UsdtArg, note: UsdtProbe): void {
  const where = `USDT ${note.provider}:${note.name} argument '${a.spec}'`;
  if (![1, 2, 4, 8].includes(a.size)) throw new ProbeTargetError(`${where}: size ${a.size}`);
  const loc = a.location;
  if (loc.kind === "const") {
    p.mov(dst, loc.value);
    return; // the immediate is already the value
  }
  if (loc.kind === "rip") {
    throw new ProbeTargetError(`${where}: %rip-relative arguments are not supported`);
  }
  const field = ptRegsField(loc.reg);
  if (!field) throw new ProbeTargetError(`${where}: register '${loc.reg}' is not supported`);
  if (loc.kind === "reg") {
    reg(p, dst, field);
  } else {
    const tmp = p.stack(8);
    p.store("u64", r10, tmp, 0);
    reg(p, r3, field).add(r3, loc.offset).stackPtr(r1, tmp).mov(r2, a.size);
    p.call("probe_read_user").load(dst, "u64", r10, tmp);
  }
  if (a.size < 8) {
    const shift = 64 - 8 * a.size;
    p.lsh(dst, shift).alu(a.signed ? "arsh" : "rsh", dst, shift);
  }
}

/**
 * One program per site of USDT probe `provider:name` in the ELF file at
 * `binaryPath` (a probe may be compiled in at several places). Probes with a
 * semaphore (an "is enabled" counter the process checks before collecting
 * the arguments) fire only while the semaphore is non-zero: see
 * {@link usdtSemaphoreAddress}. Throws a ProbeTargetError when the file has
 * no such probe.
 */
export function usdt(
  binaryPath: string,
  provider: string,
  name: string,
  opts: Omit<UprobeOptions, "retprobe"> & {
    /** The kernel raises the probe's semaphore while attached (uprobe ref_ctr_offset, 4.20). */
    kernelSemaphore?: boolean;
  } = {},
): UsdtProgram[] {
  requireX86_64();
  const notes = openElf(binaryPath).usdt(provider, name);
  if (notes.length === 0) {
    throw new ProbeTargetError(`${binaryPath} has no USDT probe ${provider}:${name}`);
  }
  return notes.map((note, i) =>
    new UsdtProgram(
      note,
      (opts.name ?? `usdt_${name}`) + (notes.length > 1 ? `_${i}` : ""),
      binaryPath,
      opts.layouts ?? kernelLayouts,
      opts.pid,
      opts.kernelSemaphore,
    )
  );
}

/**
 * The runtime address of a USDT probe's semaphore in process `pid`, from where
 * /proc/PID/maps says the file is mapped; undefined when the probe has no
 * semaphore or the process does not map the file.
 */
export function usdtSemaphoreAddress(
  pid: number,
  binaryPath: string,
  note: UsdtProbe,
): number | undefined {
  if (!note.semaphore) return undefined;
  const elf = ElfFile.open(binaryPath);
  const target = Deno.statSync(binaryPath);
  for (const line of Deno.readTextFileSync(`/proc/${pid}/maps`).split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length < 6 || !f[5].startsWith("/") || Number(f[4]) !== target.ino) continue;
    if (!sameFile(`/proc/${pid}/root${f[5]}`, target)) continue;
    const start = parseInt(f[0].split("-")[0], 16);
    return elf.loadBias(start, parseInt(f[2], 16)) + note.semaphore;
  }
  return undefined;
}

/** Whether `path` (as the process sees it) is the file `target` (same device and inode). */
function sameFile(path: string, target: Deno.FileInfo): boolean {
  try {
    const st = Deno.statSync(path);
    return st.ino === target.ino && st.dev === target.dev;
  } catch {
    return false;
  }
}

// The semaphore write touches another process: it lives in lib/kernel. Re-exported
// here for tools/mysqld_qslower.ts until it imports lib/kernel/process_memory.ts.
