/**
 * What the two FFI bindings (libbpf.ts, libc.ts) share: symbols bound on
 * first use, the error for a library that cannot be opened, C strings.
 *
 * @module
 */

/** A shared library the toolkit needs cannot be opened. */
export class LibraryMissingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LibraryMissingError";
  }
}

/** Libraries opened by lazySymbols, kept for the life of the process. */
const opened: Deno.DynamicLibrary<Deno.ForeignLibraryInterface>[] = [];

/** Opens `path` with `symbols` and keeps it open for the life of the process. */
export function openLibrary<S extends Deno.ForeignLibraryInterface>(
  path: string,
  symbols: S,
): Deno.DynamicLibrary<S> {
  const lib = Deno.dlopen(path, symbols);
  opened.push(lib);
  return lib;
}

/**
 * A library's symbols, each bound on first use. Deno prepares every declared
 * FFI symbol when the library is opened (~0.15 ms each, all of them on the
 * start-up path), and a tool calls only a few of the ones declared. A
 * symbol is bound by opening the library again with just that symbol (the
 * dynamic loader has it already: only a reference count changes).
 */
export function lazySymbols<S extends Deno.ForeignLibraryInterface>(
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
          lib = openLibrary(path, { [name]: declarations[name] });
        } catch (e) {
          throw onError(e);
        }
        const fn = lib.symbols[name];
        Object.defineProperty(symbols, name, { value: fn, enumerable: true });
        return fn;
      },
    });
  }
  return symbols;
}

/** The first line of a dlopen error, for a one-line message. */
export function firstLine(e: unknown): string {
  return e instanceof Error ? e.message.split("\n")[0] : String(e);
}

/** Encodes a string as a NUL-terminated C string. */
export function cString(s: string): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(s);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

/** The address of a buffer, for a field of a struct passed to the kernel. */
export function addressOf(buf: Uint8Array<ArrayBuffer>): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf)));
}
