/**
 * The single FFI binding to libbpf.so.1 (and the few libc calls libbpf has no
 * wrapper for: perf_event_open, close). Opened lazily on first use, so that
 * `--dump` and `--help` work on machines without libbpf.
 */

const LIBBPF_SYMBOLS = {
  libbpf_major_version: { parameters: [], result: "u32" },
  libbpf_minor_version: { parameters: [], result: "u32" },
  libbpf_num_possible_cpus: { parameters: [], result: "i32" },
  bpf_map_create: {
    parameters: ["u32", "buffer", "u32", "u32", "u32", "buffer"],
    result: "i32",
  },
  bpf_prog_load: {
    parameters: ["u32", "buffer", "buffer", "buffer", "usize", "buffer"],
    result: "i32",
  },
  bpf_btf_load: { parameters: ["buffer", "usize", "buffer"], result: "i32" },
  bpf_map_lookup_elem: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  bpf_map_update_elem: { parameters: ["i32", "buffer", "buffer", "u64"], result: "i32" },
  bpf_map_delete_elem: { parameters: ["i32", "buffer"], result: "i32" },
  bpf_map_get_next_key: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  bpf_map_lookup_batch: {
    parameters: ["i32", "buffer", "buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  bpf_link_create: { parameters: ["i32", "i32", "u32", "buffer"], result: "i32" },
  bpf_raw_tracepoint_open: { parameters: ["buffer", "i32"], result: "i32" },
  bpf_obj_get_info_by_fd: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  bpf_enable_stats: { parameters: ["u32"], result: "i32" },
  bpf_prog_test_run_opts: { parameters: ["i32", "buffer"], result: "i32" },
} as const;

const LIBC_SYMBOLS = {
  // long syscall(long number, ...): called with integer arguments only, which
  // the x86-64 and arm64 calling conventions pass exactly as for a plain call.
  syscall: {
    name: "syscall",
    parameters: ["i64", "buffer", "i32", "i32", "i32", "u64"],
    result: "i64",
  },
  close: { parameters: ["i32"], result: "i32" },
  open: { parameters: ["buffer", "i32"], result: "i32" },
  geteuid: { parameters: [], result: "u32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

/** The oldest libbpf whose low-level API matches what this binding declares. */
export const MIN_LIBBPF = { major: 1, minor: 0 };

/** The libbpf install hint every "library missing" message carries. */
export const LIBBPF_INSTALL_HINT =
  "install it with 'apt-get install libbpf1' (Debian/Ubuntu) or 'dnf install libbpf' (Fedora)";

type Libbpf = Deno.DynamicLibrary<typeof LIBBPF_SYMBOLS>["symbols"];
type Libc = Deno.DynamicLibrary<typeof LIBC_SYMBOLS>["symbols"];

let libbpf: Libbpf | undefined;
let libc: Libc | undefined;

/** The libbpf symbols, opening the library (and checking its version) on first use. */
export function bpf(): Libbpf {
  if (libbpf) return libbpf;
  const path = Deno.env.get("BPFTK_LIBBPF") ?? "libbpf.so.1";
  const cannotLoad = (e: unknown) => {
    const why = e instanceof Error ? e.message.split("\n")[0] : String(e);
    return new LibraryMissingError(`cannot load libbpf.so.1 (${why}): ${LIBBPF_INSTALL_HINT}`);
  };
  let version: Deno.DynamicLibrary<typeof VERSION_SYMBOLS>;
  try {
    version = Deno.dlopen(path, VERSION_SYMBOLS);
  } catch (e) {
    throw cannotLoad(e);
  }
  opened.push(version);
  const major = version.symbols.libbpf_major_version();
  const minor = version.symbols.libbpf_minor_version();
  if (major < MIN_LIBBPF.major) {
    throw new LibraryMissingError(
      `libbpf ${major}.${minor} is too old (need ${MIN_LIBBPF.major}.${MIN_LIBBPF.minor} or newer): ${LIBBPF_INSTALL_HINT}`,
    );
  }
  libbpf = lazySymbols(path, LIBBPF_SYMBOLS, cannotLoad);
  return libbpf;
}

const VERSION_SYMBOLS = {
  libbpf_major_version: LIBBPF_SYMBOLS.libbpf_major_version,
  libbpf_minor_version: LIBBPF_SYMBOLS.libbpf_minor_version,
} as const;

/** The libc symbols. */
export function c(): Libc {
  if (!libc) libc = lazySymbols("libc.so.6", LIBC_SYMBOLS, (e) => e);
  return libc;
}

/** Libraries opened by lazySymbols, kept for the life of the process. */
const opened: Deno.DynamicLibrary<Deno.ForeignLibraryInterface>[] = [];

/**
 * A library's symbols, each bound on first use. Deno prepares every declared
 * FFI symbol when the library is opened (~0.15 ms each, all of them on the
 * start-up path), and a tool calls only a few of the ones declared here. A
 * symbol is bound by opening the library again with just that symbol (the
 * dynamic loader has it already: only a reference count changes).
 */
function lazySymbols<S extends Deno.ForeignLibraryInterface>(
  path: string,
  declarations: S,
  onError: (e: unknown) => unknown,
): Deno.DynamicLibrary<S>["symbols"] {
  const symbols = {} as Deno.DynamicLibrary<S>["symbols"];
  for (const name of Object.keys(declarations)) {
    Object.defineProperty(symbols, name, {
      configurable: true,
      enumerable: true,
      get() {
        let lib: Deno.DynamicLibrary<Deno.ForeignLibraryInterface>;
        try {
          lib = Deno.dlopen(path, { [name]: declarations[name] });
        } catch (e) {
          throw onError(e);
        }
        opened.push(lib);
        const fn = lib.symbols[name];
        Object.defineProperty(symbols, name, { value: fn, enumerable: true });
        return fn;
      },
    });
  }
  return symbols;
}

/** The version of the libbpf in use, "1.1". */
export function libbpfVersion(): string {
  const lib = bpf();
  return `${lib.libbpf_major_version()}.${lib.libbpf_minor_version()}`;
}

/** libc's errno after a failed libc call. */
export function lastErrno(): number {
  const p = c().__errno_location();
  return p ? new Deno.UnsafePointerView(p).getInt32() : 0;
}

/** A shared library the toolkit needs cannot be opened. */
export class LibraryMissingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LibraryMissingError";
  }
}

/** Encodes a string as a NUL-terminated C string. */
export function cString(s: string): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(s);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}
