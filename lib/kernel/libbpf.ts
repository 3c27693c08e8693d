/**
 * The single FFI binding to libbpf.so.1 (its low-level bpf(2) wrappers).
 * Opened lazily on first use, so that `--dump` and `--help` work on machines
 * without libbpf; each symbol is bound on its first call.
 *
 * @module
 */
import { firstLine, lazySymbols, LibraryMissingError, openLibrary } from "./ffi.ts";

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
  bpf_prog_test_run_opts: { parameters: ["i32", "buffer"], result: "i32" },
} as const;

const VERSION_SYMBOLS = {
  libbpf_major_version: LIBBPF_SYMBOLS.libbpf_major_version,
  libbpf_minor_version: LIBBPF_SYMBOLS.libbpf_minor_version,
} as const;

/** The oldest libbpf whose low-level API matches what this binding declares. */
const MIN_LIBBPF = { major: 1, minor: 0 };

/** The libbpf install hint every "library missing" message carries. */
const LIBBPF_INSTALL_HINT =
  "install it with 'apt-get install libbpf1' (Debian/Ubuntu) or 'dnf install libbpf' (Fedora)";

type Libbpf = Deno.DynamicLibrary<typeof LIBBPF_SYMBOLS>["symbols"];

let libbpf: Libbpf | undefined;

/** The libbpf symbols, opening the library (and checking its version) on first use. */
export function bpf(): Libbpf {
  if (libbpf) return libbpf;
  const path = Deno.env.get("BPFTK_LIBBPF") ?? "libbpf.so.1";
  const cannotLoad = (e: unknown) =>
    new LibraryMissingError(`cannot load libbpf.so.1 (${firstLine(e)}): ${LIBBPF_INSTALL_HINT}`);
  let version: Deno.DynamicLibrary<typeof VERSION_SYMBOLS>;
  try {
    version = openLibrary(path, VERSION_SYMBOLS);
  } catch (e) {
    throw cannotLoad(e);
  }
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

/** The version of the libbpf in use, "1.1". */
export function libbpfVersion(): string {
  const lib = bpf();
  return `${lib.libbpf_major_version()}.${lib.libbpf_minor_version()}`;
}
