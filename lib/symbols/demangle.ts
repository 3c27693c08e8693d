/**
 * Symbol demangling, so stacks show `v8::internal::Invoke(...)` and
 * `std::rt::lang_start_internal` rather than `_ZN2v88internal...` and
 * `_RNvNtCs...`:
 *
 * - C++ (Itanium ABI, `_Z...`), printed as GNU c++filt / __cxa_demangle do
 *   ("char const*", "[clone .cold]"); the grammar's common part: nested and
 *   local names, templates, substitutions, operators, constructors and
 *   destructors, function and array types, literals, ABI tags.
 * - Rust legacy (`_ZN...17h<hash>E`) and v0 (`_R...`), printed as
 *   rustc-demangle's alternate form does: no hashes, no crate disambiguators.
 *
 * Anything not understood comes back unchanged (a mangled name is still a
 * name), never half-demangled.
 *
 * @example
 * ```ts
 * import { demangle } from "./demangle.ts";
 * demangle("_ZN4node16NodeMainInstance3RunEv"); // "node::NodeMainInstance::Run()"
 * demangle("_RNvNtCs1234_3std2rt19lang_start_internal"); // "std::rt::lang_start_internal"
 * demangle("main"); // "main"
 * ```
 *
 * @module
 */

/** The demangled form of `name`, or `name` itself when it is not mangled (or not understood). */
export function demangle(name: string): string {
  // A symbol version ("@@GLIBCXX_3.4") stays as it is, after the demangled name.
  const at = name.indexOf("@");
  if (at > 0) {
    const base = demangle(name.slice(0, at));
    return base === name.slice(0, at) ? name : base + name.slice(at);
  }
  try {
    if (name.startsWith("_R")) return demangleRustV0(name) ?? name;
    if (name.startsWith("_Z")) {
      return demangleRustLegacy(name) ?? new ItaniumParser(name).symbol() ?? name;
    }
  } catch {
    // malformed: keep the mangled name
  }
  return name;
}

// --- Rust legacy -------------------------------------------------------------

const RUST_ESCAPES: Record<string, string> = {
  SP: "@",
  BP: "*",
  RF: "&",
  LT: "<",
  GT: ">",
  LP: "(",
  RP: ")",
  C: ",",
};

/** `_ZN` + length-prefixed parts + a `h<16 hex>` hash part + `E` (Rust before v0). */
function demangleRustLegacy(name: string): string | undefined {
  const end = name.match(/17h[0-9a-f]{16}E(?:\.[\w.]+)?$/);
  if (!name.startsWith("_ZN") || !end) return undefined;
  const parts: string[] = [];
  let pos = 3;
  while (pos < end.index!) {
    const len = name.slice(pos, pos + 10).match(/^\d+/);
    if (!len) return undefined;
    const n = Number(len[0]);
    pos += len[0].length;
    if (n === 0 || pos + n > end.index!) return undefined;
    parts.push(name.slice(pos, pos + n));
    pos += n;
  }
  if (parts.length === 0) return undefined;
  return parts.map(unescapeRustLegacy).join("::");
}

function unescapeRustLegacy(part: string): string {
  let s = part.startsWith("_$") ? part.slice(1) : part;
  s = s.replace(/\$([A-Z]+|u[0-9a-f]+)\$/g, (all, code: string) => {
    if (code.startsWith("u")) return String.fromCodePoint(parseInt(code.slice(1), 16));
    return RUST_ESCAPES[code] ?? all;
  });
  return s.replaceAll("..", "::");
}

// --- Rust v0 ------------------------------------------------------------------

const RUST_BASIC: Record<string, string> = {
  a: "i8",
  b: "bool",
  c: "char",
  d: "f64",
  e: "str",
  f: "f32",
  h: "u8",
  i: "isize",
  j: "usize",
  l: "i32",
  m: "u32",
  n: "i128",
  o: "u128",
  p: "_",
  s: "i16",
  t: "u16",
  u: "()",
  v: "...",
  x: "i64",
  y: "u64",
  z: "!",
};

class DemangleError extends Error {}

/** `_R` symbols (RFC 2603), printed without hashes and disambiguators. */
function demangleRustV0(name: string): string | undefined {
  const body = name.replace(/\.[\w.]*$/, ""); // LLVM suffixes (.llvm.123)
  const p = new RustV0Parser(body.slice(2));
  if (/^\d/.test(p.s)) p.decimal(); // encoding version
  const out = p.path(true);
  // An instantiating crate may follow: not printed.
  return out;
}

class RustV0Parser {
  pos = 0;
  depth = 0;
  constructor(readonly s: string) {}

  #peek(): string {
    return this.s[this.pos] ?? "";
  }
  #next(): string {
    if (this.pos >= this.s.length) throw new DemangleError("end of symbol");
    return this.s[this.pos++];
  }
  #eat(c: string): boolean {
    if (this.s[this.pos] === c) {
      this.pos++;
      return true;
    }
    return false;
  }

  decimal(): number {
    const m = this.s.slice(this.pos).match(/^\d+/);
    if (!m) throw new DemangleError("expected a number");
    this.pos += m[0].length;
    return Number(m[0]);
  }

  base62(): number {
    if (this.#eat("_")) return 0;
    let n = 0;
    for (;;) {
      const c = this.#next();
      if (c === "_") return n + 1;
      const d = /[0-9]/.test(c)
        ? c.charCodeAt(0) - 48
        : /[a-z]/.test(c)
        ? c.charCodeAt(0) - 97 + 10
        : /[A-Z]/.test(c)
        ? c.charCodeAt(0) - 65 + 36
        : -1;
      if (d < 0) throw new DemangleError("bad base-62 digit");
      n = n * 62 + d;
    }
  }

  #disambiguator(): void {
    if (this.#eat("s")) this.base62();
  }

  #identifier(): string {
    this.#disambiguator();
    const punycode = this.#eat("u");
    const len = this.decimal();
    this.#eat("_");
    const raw = this.s.slice(this.pos, this.pos + len);
    if (raw.length !== len) throw new DemangleError("short identifier");
    this.pos += len;
    if (punycode) throw new DemangleError("punycode identifiers are not supported");
    return raw;
  }

  #backref<T>(parse: () => T): T {
    const at = this.base62();
    if (at >= this.pos) throw new DemangleError("forward back reference");
    const saved = this.pos;
    this.pos = at;
    if (++this.depth > 64) throw new DemangleError("too deep");
    try {
      return parse();
    } finally {
      this.depth--;
      this.pos = saved;
    }
  }

  /** A path; in a type or generic-argument position, generics print without "::". */
  path(inValue = true): string {
    const tag = this.#next();
    switch (tag) {
      case "C":
        return this.#identifier();
      case "M": {
        this.#disambiguator();
        this.path();
        return `<${this.type()}>`;
      }
      case "X": {
        this.#disambiguator();
        this.path();
        const self = this.type();
        return `<${self} as ${this.path()}>`;
      }
      case "Y": {
        const self = this.type();
        return `<${self} as ${this.path()}>`;
      }
      case "N": {
        const ns = this.#next();
        const parent = this.path(inValue);
        const disambiguated = this.#peek() === "s";
        const before = this.pos;
        this.#disambiguator();
        const n = disambiguated ? this.#disambiguatorValue(before) : 0;
        const id = this.#identifier();
        if (/[a-z]/.test(ns)) return `${parent}::${id}`;
        const what = ns === "C" ? "closure" : ns === "S" ? "shim" : ns;
        return `${parent}::{${what}${id ? `:${id}` : ""}#${n}}`;
      }
      case "I": {
        const base = this.path(inValue);
        const args: string[] = [];
        while (!this.#eat("E")) {
          const a = this.#genericArg();
          if (a !== undefined) args.push(a);
        }
        return `${base}${inValue ? "::" : ""}<${args.join(", ")}>`;
      }
      case "B":
        return this.#backref(() => this.path(inValue));
      default:
        throw new DemangleError(`unknown path tag ${tag}`);
    }
  }

  /** The value of a disambiguator that started at `at` ("s" base-62). */
  #disambiguatorValue(at: number): number {
    const saved = this.pos;
    this.pos = at + 1;
    const n = this.base62() + 1;
    this.pos = saved;
    return n;
  }

  /** A generic argument; lifetimes are not printed (undefined). */
  #genericArg(): string | undefined {
    if (this.#eat("L")) {
      this.base62();
      return undefined;
    }
    if (this.#eat("K")) return this.#const();
    return this.type();
  }

  #const(): string {
    if (this.#eat("B")) return this.#backref(() => this.#const());
    if (this.#eat("p")) return "_";
    const ty = this.#next();
    const negative = this.#eat("n");
    const hex = this.s.slice(this.pos).match(/^[0-9a-f]*_/);
    if (!hex) throw new DemangleError("bad const");
    this.pos += hex[0].length;
    const digits = hex[0].slice(0, -1) || "0";
    if (ty === "b") return digits === "1" ? "true" : "false";
    if (ty === "c") return `'${String.fromCodePoint(parseInt(digits, 16))}'`;
    const value = BigInt(`0x${digits}`);
    return `${negative ? "-" : ""}${value}`;
  }

  type(): string {
    const c = this.#next();
    if (RUST_BASIC[c]) return RUST_BASIC[c];
    switch (c) {
      case "A": {
        const t = this.type();
        return `[${t}; ${this.#const()}]`;
      }
      case "S":
        return `[${this.type()}]`;
      case "T": {
        const items: string[] = [];
        while (!this.#eat("E")) items.push(this.type());
        return items.length === 1 ? `(${items[0]},)` : `(${items.join(", ")})`;
      }
      case "R":
      case "Q": {
        if (this.#eat("L")) this.base62();
        return `&${c === "Q" ? "mut " : ""}${this.type()}`;
      }
      case "P":
        return `*const ${this.type()}`;
      case "O":
        return `*mut ${this.type()}`;
      case "F": {
        if (this.#eat("G")) this.base62(); // binder
        const unsafe = this.#eat("U");
        let abi = "";
        if (this.#eat("K")) {
          abi = this.#eat("C") ? "C" : this.#identifier().replaceAll("_", "-");
        }
        const params: string[] = [];
        while (!this.#eat("E")) params.push(this.type());
        const ret = this.type();
        return `${unsafe ? "unsafe " : ""}${abi ? `extern "${abi}" ` : ""}fn(${params.join(", ")})${
          ret === "()" ? "" : ` -> ${ret}`
        }`;
      }
      case "D": {
        if (this.#eat("G")) this.base62();
        const bounds: string[] = [];
        while (!this.#eat("E")) {
          let bound = this.path(false);
          const assoc: string[] = [];
          while (this.#eat("p")) {
            const id = this.#identifier();
            assoc.push(`${id} = ${this.type()}`);
          }
          if (assoc.length) {
            bound = bound.endsWith(">")
              ? `${bound.slice(0, -1)}, ${assoc.join(", ")}>`
              : `${bound}<${assoc.join(", ")}>`;
          }
          bounds.push(bound);
        }
        if (this.#eat("L")) this.base62();
        return `dyn ${bounds.join(" + ")}`;
      }
      case "B":
        return this.#backref(() => this.type());
      default:
        this.pos--;
        return this.path(false);
    }
  }
}

// --- C++ (Itanium) -----------------------------------------------------------

/** Operator codes -> their names (and how many operands, for unary/binary spelling). */
const OPERATORS: Record<string, string> = {
  nw: "new",
  na: "new[]",
  dl: "delete",
  da: "delete[]",
  ps: "+",
  ng: "-",
  ad: "&",
  de: "*",
  co: "~",
  pl: "+",
  mi: "-",
  ml: "*",
  dv: "/",
  rm: "%",
  an: "&",
  or: "|",
  eo: "^",
  aS: "=",
  pL: "+=",
  mI: "-=",
  mL: "*=",
  dV: "/=",
  rM: "%=",
  aN: "&=",
  oR: "|=",
  eO: "^=",
  ls: "<<",
  rs: ">>",
  lS: "<<=",
  rS: ">>=",
  eq: "==",
  ne: "!=",
  lt: "<",
  gt: ">",
  le: "<=",
  ge: ">=",
  ss: "<=>",
  nt: "!",
  aa: "&&",
  oo: "||",
  pp: "++",
  mm: "--",
  cm: ",",
  pm: "->*",
  pt: "->",
  cl: "()",
  ix: "[]",
  qu: "?",
  aw: "co_await",
};

const BUILTIN: Record<string, string> = {
  v: "void",
  w: "wchar_t",
  b: "bool",
  c: "char",
  a: "signed char",
  h: "unsigned char",
  s: "short",
  t: "unsigned short",
  i: "int",
  j: "unsigned int",
  l: "long",
  m: "unsigned long",
  x: "long long",
  y: "unsigned long long",
  n: "__int128",
  o: "unsigned __int128",
  f: "float",
  d: "double",
  e: "long double",
  g: "__float128",
  z: "...",
};

const BUILTIN_D: Record<string, string> = {
  d: "decimal64",
  e: "decimal128",
  f: "decimal32",
  h: "half",
  i: "char32_t",
  s: "char16_t",
  u: "char8_t",
  a: "auto",
  c: "decltype(auto)",
  n: "decltype(nullptr)",
};

/**
 * Standard substitutions Sa, Sb, Ss, Si, So, Sd: short names, and the full
 * ones __cxa_demangle uses before a constructor or destructor (whose name is `last`).
 */
const STD_SUBST: Record<string, { name: string; full: string; last: string }> = {
  a: { name: "std::allocator", full: "std::allocator", last: "allocator" },
  b: { name: "std::basic_string", full: "std::basic_string", last: "basic_string" },
  s: {
    name: "std::string",
    full: "std::basic_string<char, std::char_traits<char>, std::allocator<char> >",
    last: "basic_string",
  },
  i: {
    name: "std::istream",
    full: "std::basic_istream<char, std::char_traits<char> >",
    last: "basic_istream",
  },
  o: {
    name: "std::ostream",
    full: "std::basic_ostream<char, std::char_traits<char> >",
    last: "basic_ostream",
  },
  d: {
    name: "std::iostream",
    full: "std::basic_iostream<char, std::char_traits<char> >",
    last: "basic_iostream",
  },
};

/**
 * A type as printed. Declarators compose the way the GNU demangler prints
 * them: a pointer to a function or array goes inside parentheses
 * ("void (*)(int)", "int (&) [3]"), references collapse (T& && is T&), and a
 * template parameter pack expands element by element.
 */
interface CxxType {
  /** Text before and after the declarator hole. */
  left: string;
  right: string;
  /** Function or array type: what it prints as while its hole is empty ("void (int)"). */
  bare?: string;
  /** The outermost declarator is a reference: the type it refers to, and which one. */
  ref?: { to: CxxType; kind: "&" | "&&" };
  /** A template argument pack (J...E), or a pack expansion of one. */
  pack?: CxxType[];
  /** An array type's element and bound, so qualifiers go on the element. */
  array?: { elem: string; dim: string };
  /**
   * A template parameter (T_) recorded as a substitution candidate: the GNU
   * demangler resolves it where the substitution is used, not where it was seen.
   */
  param?: number;
}

function arrayType(elem: string, dim: string): CxxType {
  return { left: `${elem} (`, right: `) [${dim}]`, bare: `${elem} [${dim}]`, array: { elem, dim } };
}

const plain = (text: string): CxxType => ({ left: text, right: "" });
const render = (t: CxxType): string =>
  t.pack ? t.pack.map(render).join(", ") : t.bare ?? t.left + t.right;

/** `*`, `&` or `&&` applied to `inner` (elementwise over a pack). */
function pointerTo(inner: CxxType, sym: "*" | "&" | "&&"): CxxType {
  if (inner.pack) return { ...plain(""), pack: inner.pack.map((t) => pointerTo(t, sym)) };
  if (sym !== "*" && inner.ref) {
    // Reference collapsing: only && applied to && stays &&.
    const kind = sym === "&&" && inner.ref.kind === "&&" ? "&&" : "&";
    return pointerTo(inner.ref.to, kind);
  }
  const out: CxxType = inner.bare !== undefined
    ? { left: `${inner.left}${sym}`, right: inner.right, bare: undefined }
    : { left: `${inner.left}${sym}`, right: inner.right };
  if (sym !== "*") out.ref = { to: inner, kind: sym };
  return out;
}

/** cv-qualifiers applied to `inner` ("int const", "void (* const)(int)"). */
function qualified(inner: CxxType, quals: string): CxxType {
  if (inner.pack) return { ...plain(""), pack: inner.pack.map((t) => qualified(t, quals)) };
  if (inner.array) return arrayType(`${inner.array.elem} ${quals}`, inner.array.dim);
  if (inner.bare !== undefined) {
    return { ...inner, right: `${inner.right} ${quals}`, bare: `${inner.bare} ${quals}` };
  }
  // T const where T is already const prints once.
  const fresh = quals.split(" ").filter((q) => !inner.left.endsWith(` ${q}`)).join(" ");
  return fresh ? { left: `${inner.left} ${fresh}`, right: inner.right } : inner;
}

/** A name as parsed: its printed form, and what the encoding needs to know about it. */
interface CxxName {
  text: string;
  /** The unqualified last component (for constructors/destructors of a nested class). */
  last: string;
  /** The name ends in template arguments (then the signature starts with a return type). */
  template: boolean;
  /** Constructor, destructor or conversion operator: no return type even when templated. */
  noReturn: boolean;
  /** CV and ref qualifiers of a member function ("const", "&&"). */
  quals: string;
}

class ItaniumParser {
  pos = 0;
  readonly subs: CxxType[] = [];
  /** Template arguments of the outermost template, for T_ references. */
  templateArgs: CxxType[] = [];
  depth = 0;
  constructor(readonly s: string) {}

  #peek(n = 0): string {
    return this.s[this.pos + n] ?? "";
  }
  #next(): string {
    if (this.pos >= this.s.length) throw new DemangleError("end of symbol");
    return this.s[this.pos++];
  }
  #eat(text: string): boolean {
    if (this.s.startsWith(text, this.pos)) {
      this.pos += text.length;
      return true;
    }
    return false;
  }
  #expect(text: string): void {
    if (!this.#eat(text)) throw new DemangleError(`expected ${text}`);
  }

  /** The whole symbol, or undefined when it is not (fully) understood. */
  symbol(): string | undefined {
    const clone = this.s.match(/^(_Z[^.]*)((?:\.[A-Za-z_]\w*(?:\.\d+)*)+|(?:\.\d+)+)?$/);
    if (!clone) return undefined;
    const core = clone[1];
    const self = new ItaniumParser(core);
    self.#expect("_Z");
    const out = self.#encoding();
    if (self.pos !== core.length) return undefined;
    const suffix = clone[2]
      ? [...clone[2].matchAll(/\.[A-Za-z_]\w*(?:\.\d+)*|\.\d+/g)].map((m) => ` [clone ${m[0]}]`)
        .join("")
      : "";
    return out + suffix;
  }

  /**
   * A function or data name with its signature. `withReturnType` false: as in
   * a local name's scope; `nameOnly`: just the name, as after "&" in a template argument.
   */
  #encoding(withReturnType = true, nameOnly = false): string {
    if (++this.depth > 128) throw new DemangleError("too deep");
    try {
      const special = this.#specialName();
      if (special !== undefined) return special;
      const name = this.#name();
      if (this.pos >= this.s.length || this.#peek() === "E" || this.#peek() === ".") {
        return name.text;
      }
      // A function: [return type if template] parameter types.
      let ret: CxxType | undefined;
      if (name.template && !name.noReturn) ret = this.#type();
      const params = this.#bareFunctionParams();
      // "&f" for a plain function; a qualified or templated one prints whole: "&(f() const)".
      if (nameOnly && !name.quals && !name.template) return name.text;
      const sig = `${name.text}(${params})${name.quals}`;
      const full = ret && withReturnType ? renderDeclarator(ret, sig) : sig;
      return nameOnly ? `(${full})` : full;
    } finally {
      this.depth--;
    }
  }

  /** Types up to the end of the encoding (or "E"): "v" alone means no parameters. */
  #bareFunctionParams(): string {
    const params: string[] = [];
    while (this.pos < this.s.length && this.#peek() !== "E" && this.#peek() !== ".") {
      const t = this.#type();
      if (t.pack) params.push(...t.pack.map(render));
      else params.push(render(t));
    }
    if (params.length === 1 && params[0] === "void") return "";
    return params.join(", ");
  }

  #specialName(): string | undefined {
    const two = this.s.slice(this.pos, this.pos + 2);
    const simple: Record<string, string> = {
      TV: "vtable for ",
      TT: "VTT for ",
      TI: "typeinfo for ",
      TS: "typeinfo name for ",
    };
    if (simple[two]) {
      this.pos += 2;
      return simple[two] + render(this.#type());
    }
    if (two === "GV") {
      this.pos += 2;
      return `guard variable for ${this.#name().text}`;
    }
    if (two === "GR") {
      this.pos += 2;
      const name = this.#name().text;
      if (!this.#eat("_")) {
        while (this.#peek() !== "_") this.#next();
        this.#next();
      }
      return `reference temporary #0 for ${name}`;
    }
    if (two === "TW" || two === "TH") {
      this.pos += 2;
      return `${two === "TW" ? "TLS wrapper" : "TLS init function"} for ${this.#name().text}`;
    }
    if (two === "Th" || two === "Tv") {
      this.pos += 2;
      this.#callOffset(two[1]);
      return `${two === "Th" ? "non-virtual" : "virtual"} thunk to ${this.#encoding()}`;
    }
    if (two === "Tc") {
      this.pos += 2;
      this.#callOffset(this.#next());
      this.#callOffset(this.#next());
      return `covariant return thunk to ${this.#encoding()}`;
    }
    return undefined;
  }

  #callOffset(kind: string): void {
    this.#number();
    this.#expect("_");
    if (kind === "v") {
      this.#number();
      this.#expect("_");
    }
  }

  #number(): number {
    const negative = this.#eat("n");
    const m = this.s.slice(this.pos).match(/^\d+/);
    if (!m) throw new DemangleError("expected a number");
    this.pos += m[0].length;
    return negative ? -Number(m[0]) : Number(m[0]);
  }

  #name(): CxxName {
    const c = this.#peek();
    if (c === "N") return this.#nestedName();
    if (c === "Z") return this.#localName();
    // unscoped-name, or unscoped-template-name / substitution followed by template args
    let base: string;
    let last: string;
    let noReturn = false;
    if (c === "S" && this.#peek(1) !== "t") {
      const sub = this.#substitution();
      base = render(sub);
      last = base;
    } else {
      const std = this.#eat("St");
      const u = this.#unqualifiedName("");
      base = (std ? "std::" : "") + u.text;
      last = u.text;
      noReturn = u.noReturn;
      if (this.#peek() === "I") this.subs.push(plain(base));
    }
    if (this.#peek() === "I") {
      const args = this.#templateArgs();
      this.templateArgs = args.list;
      // The whole template-id becomes a candidate only as a type (see #typeInner).
      return { text: joinTemplate(base, args.text), last, template: true, noReturn, quals: "" };
    }
    return { text: base, last, template: false, noReturn, quals: "" };
  }

  #nestedName(): CxxName {
    this.#expect("N");
    let quals = "";
    const cv: string[] = [];
    while ("rVK".includes(this.#peek()) && this.#peek() !== "") {
      const q = this.#next();
      cv.push(q === "r" ? "restrict" : q === "V" ? "volatile" : "const");
    }
    // GNU prints them in the order const, volatile, restrict.
    const order = ["const", "volatile", "restrict"];
    if (cv.length) quals = " " + cv.sort((a, b) => order.indexOf(a) - order.indexOf(b)).join(" ");
    if (this.#eat("R")) quals += " &";
    else if (this.#eat("O")) quals += " &&";

    let prefix = "";
    let last = "";
    let template = false;
    let noReturn = false;
    while (!this.#eat("E")) {
      const c = this.#peek();
      template = false;
      if (c === "I") {
        if (!prefix) throw new DemangleError("template args without a name");
        const args = this.#templateArgs();
        this.templateArgs = args.list;
        prefix = joinTemplate(prefix, args.text);
        template = true;
        // Each prefix is a candidate; the complete name only as a type (#typeInner).
        if (this.#peek() !== "E") this.subs.push(plain(prefix));
        continue;
      }
      let part: string;
      const std = STD_SUBST[this.#peek(1)];
      if (c === "S" && std && "CD".includes(this.#peek(2)) && this.#peek(2) !== "") {
        this.pos += 2;
        prefix = prefix ? `${prefix}::${std.full}` : std.full;
        last = std.last;
        continue;
      }
      if (c === "S" && this.#peek(1) !== "t") {
        part = render(this.#substitution());
        prefix = prefix ? `${prefix}::${part}` : part;
        last = part.replace(/^.*::/, "").replace(/<.*$/, "");
        continue; // a substitution is not added again
      } else if (c === "T") {
        part = render(this.#templateParam());
      } else if (c === "D" && (this.#peek(1) === "t" || this.#peek(1) === "T")) {
        throw new DemangleError("decltype in a name");
      } else {
        if (c === "S" && this.#eat("St")) prefix = prefix ? `${prefix}::std` : "std";
        const u = this.#unqualifiedName(last);
        part = u.text;
        noReturn = u.noReturn;
      }
      prefix = prefix ? `${prefix}::${part}` : part;
      if (c !== "C" && c !== "D") last = part.replace(/\[abi:[^\]]*\]/g, "");
      if (this.#peek() !== "E") this.subs.push(plain(prefix));
    }
    return { text: prefix, last, template, noReturn, quals };
  }

  #localName(): CxxName {
    this.#expect("Z");
    const saved = this.templateArgs;
    const fn = this.#encoding(false);
    this.templateArgs = saved;
    this.#expect("E");
    if (this.#eat("s")) {
      this.#discriminator();
      return {
        text: `${fn}::string literal`,
        last: "",
        template: false,
        noReturn: false,
        quals: "",
      };
    }
    if (this.#eat("d")) {
      if (this.#peek() !== "_") this.#number();
      this.#expect("_");
    }
    const inner = this.#name();
    this.#discriminator();
    return { ...inner, text: `${fn}::${inner.text}` };
  }

  #discriminator(): void {
    if (this.#eat("__")) {
      this.#number();
      this.#expect("_");
    } else if (this.#eat("_")) this.#number();
  }

  /** source-name, operator-name, ctor/dtor-name, unnamed types; then ABI tags. */
  #unqualifiedName(enclosing: string): { text: string; noReturn: boolean } {
    const c = this.#peek();
    let text: string;
    let noReturn = false;
    if (/\d/.test(c)) {
      text = this.#sourceName();
    } else if (c === "C" && /[1-5I]/.test(this.#peek(1))) {
      this.pos++;
      if (this.#eat("I")) {
        this.#next();
        this.#type();
      } else this.#next();
      text = enclosing;
      noReturn = true;
    } else if (c === "D" && /[0-5]/.test(this.#peek(1))) {
      this.pos += 2;
      text = `~${enclosing}`;
      noReturn = true;
    } else if (c === "U" && this.#peek(1) === "t") {
      this.pos += 2;
      const n = this.#peek() === "_" ? 1 : this.#number() + 2;
      this.#expect("_");
      text = `{unnamed type#${n}}`;
      this.subs.push(plain(text));
    } else if (c === "U" && this.#peek(1) === "l") {
      this.pos += 2;
      const params: string[] = [];
      while (!this.#eat("E")) params.push(render(this.#type()));
      const n = this.#peek() === "_" ? 1 : this.#number() + 2;
      this.#expect("_");
      // (A closure type is a candidate only as part of its enclosing name.)
      text = `{lambda(${
        params.length === 1 && params[0] === "void" ? "" : params.join(", ")
      })#${n}}`;
    } else if (c === "L") {
      this.pos++;
      text = this.#sourceName();
      this.#discriminator();
    } else {
      const op = this.#operatorName();
      text = op.text;
      noReturn = op.conversion;
    }
    while (this.#eat("B")) text += `[abi:${this.#sourceName()}]`;
    return { text, noReturn };
  }

  #sourceName(): string {
    const len = this.#number();
    if (len <= 0) throw new DemangleError("bad source name");
    const id = this.s.slice(this.pos, this.pos + len);
    if (id.length !== len) throw new DemangleError("short source name");
    this.pos += len;
    return /^_GLOBAL_[._$]N/.test(id) ? "(anonymous namespace)" : id;
  }

  #operatorName(): { text: string; conversion: boolean } {
    const code = this.s.slice(this.pos, this.pos + 2);
    if (code === "cv") {
      this.pos += 2;
      return { text: `operator ${render(this.#type())}`, conversion: true };
    }
    if (code === "li") {
      this.pos += 2;
      return { text: `operator"" ${this.#sourceName()}`, conversion: false };
    }
    if (code[0] === "v" && /\d/.test(code[1] ?? "")) {
      this.pos += 2;
      return { text: `operator ${this.#sourceName()}`, conversion: false };
    }
    const op = OPERATORS[code];
    if (!op) throw new DemangleError(`unknown operator ${code}`);
    this.pos += 2;
    const spaced = /^[a-z]/.test(op) ? ` ${op}` : op;
    return { text: `operator${spaced}`, conversion: false };
  }

  #substitution(): CxxType {
    this.#expect("S");
    const c = this.#peek();
    if (STD_SUBST[c]) {
      this.pos++;
      // Short here; a constructor's or destructor's class is spelled out (#nestedName).
      return plain(STD_SUBST[c].name);
    }
    let index = 0;
    if (this.#eat("_")) index = 0;
    else {
      const m = this.s.slice(this.pos).match(/^[0-9A-Z]+/);
      if (!m) throw new DemangleError("bad substitution");
      this.pos += m[0].length;
      this.#expect("_");
      index = parseInt(m[0], 36) + 1;
    }
    const t = this.subs[index];
    if (!t) throw new DemangleError(`no substitution ${index}`);
    if (t.param !== undefined) {
      const arg = this.templateArgs[t.param];
      if (!arg) throw new DemangleError(`no template parameter ${t.param}`);
      return arg;
    }
    return t;
  }

  #templateParam(): CxxType {
    return this.#resolveParam(this.#templateParamIndex());
  }

  #templateParamIndex(): number {
    this.#expect("T");
    const index = this.#peek() === "_" ? 0 : this.#number() + 1;
    this.#expect("_");
    return index;
  }

  #resolveParam(index: number): CxxType {
    const t = this.templateArgs[index];
    if (!t) throw new DemangleError(`no template parameter ${index}`);
    return t;
  }

  #templateArgs(): { text: string; list: CxxType[] } {
    this.#expect("I");
    const list: CxxType[] = [];
    const printed: string[] = [];
    while (!this.#eat("E")) {
      const arg = this.#templateArg();
      list.push(arg);
      if (arg.pack) printed.push(...arg.pack.map(render));
      else printed.push(render(arg));
    }
    const text = printed.join(", ");
    // "> >" as GNU prints it, except after an empty trailing pack (its quirk).
    const emptyPackLast = list.at(-1)?.pack?.length === 0;
    return { text: `<${text}${text.endsWith(">") && !emptyPackLast ? " " : ""}>`, list };
  }

  #templateArg(): CxxType {
    const c = this.#peek();
    if (c === "L") return plain(this.#literal());
    if (c === "X") {
      this.pos++;
      const e = this.#expression();
      this.#expect("E");
      return plain(e);
    }
    if (c === "J") {
      this.pos++;
      const pack: CxxType[] = [];
      while (!this.#eat("E")) {
        const arg = this.#templateArg();
        if (arg.pack) pack.push(...arg.pack);
        else pack.push(arg);
      }
      return { ...plain(""), pack };
    }
    return this.#type();
  }

  /** The expressions template arguments commonly hold: literals, &entity, parameters. */
  #expression(): string {
    const c = this.#peek();
    if (c === "L") return this.#literal();
    if (c === "T") return render(this.#templateParam());
    if (this.#eat("ad")) {
      if (this.#eat("L_Z")) {
        const saved = this.templateArgs;
        const entity = this.#encoding(true, true);
        this.templateArgs = saved;
        this.#expect("E");
        return `&${entity}`;
      }
      return `&${this.#expression()}`;
    }
    if (this.#eat("fp")) {
      if (this.#peek() !== "_") this.#number();
      this.#expect("_");
      return "{parm#1}";
    }
    throw new DemangleError("unsupported expression");
  }

  #literal(): string {
    this.#expect("L");
    if (this.#eat("_Z")) {
      const e = this.#encoding();
      this.#expect("E");
      return e;
    }
    const type = this.#type();
    const t = render(type);
    const m = this.s.slice(this.pos).match(/^(n?)([0-9a-f_.]*)E/);
    if (!m) throw new DemangleError("bad literal");
    this.pos += m[0].length;
    const value = `${m[1] ? "-" : ""}${m[2]}`;
    if (t === "bool") return value === "0" ? "false" : value === "1" ? "true" : `(bool)${value}`;
    if (t === "int") return value;
    const suffix: Record<string, string> = {
      "unsigned int": "u",
      long: "l",
      "unsigned long": "ul",
      "long long": "ll",
      "unsigned long long": "ull",
    };
    if (suffix[t] !== undefined) return value + suffix[t];
    return `(${t})${value}`;
  }

  #type(): CxxType {
    if (++this.depth > 256) throw new DemangleError("too deep");
    try {
      return this.#typeInner();
    } finally {
      this.depth--;
    }
  }

  #typeInner(): CxxType {
    const c = this.#peek();
    if (BUILTIN[c] !== undefined) {
      this.pos++;
      return plain(BUILTIN[c]);
    }
    if (c === "u") {
      this.pos++;
      const t = plain(this.#sourceName());
      this.subs.push(t);
      return t;
    }
    if (c === "D") {
      const d = this.#peek(1);
      if (BUILTIN_D[d]) {
        this.pos += 2;
        return plain(BUILTIN_D[d]);
      }
      if (d === "p") {
        this.pos += 2;
        const t = this.#type(); // a pack expands where it is used
        this.subs.push(t);
        return t;
      }
      if (d === "F") {
        this.pos += 2;
        const n = this.#number();
        this.#expect("_");
        return plain(`_Float${n}`);
      }
      throw new DemangleError(`unsupported type D${d}`);
    }
    if (c === "r" || c === "V" || c === "K") {
      const quals: string[] = [];
      while ("rVK".includes(this.#peek()) && this.#peek() !== "") {
        const q = this.#next();
        quals.push(q === "r" ? "restrict" : q === "V" ? "volatile" : "const");
      }
      const inner = this.#type();
      const order = ["const", "volatile", "restrict"];
      const t = qualified(
        inner,
        quals.sort((a, b) => order.indexOf(a) - order.indexOf(b)).join(" "),
      );
      this.subs.push(t);
      return t;
    }
    if (c === "P" || c === "R" || c === "O") {
      this.pos++;
      const t = pointerTo(this.#type(), c === "P" ? "*" : c === "R" ? "&" : "&&");
      this.subs.push(t);
      return t;
    }
    if (c === "F") {
      this.pos++;
      this.#eat("Y");
      const ret = this.#type();
      const params: string[] = [];
      const refQualifier = () =>
        (this.#peek() === "R" || this.#peek() === "O") && this.#peek(1) === "E";
      while (this.#peek() !== "E" && !refQualifier()) {
        const p = this.#type();
        params.push(...(p.pack ? p.pack.map(render) : [render(p)]));
      }
      let ref = "";
      if (this.#eat("R")) ref = " &";
      else if (this.#eat("O")) ref = " &&";
      this.#expect("E");
      const list = params.length === 1 && params[0] === "void" ? "" : params.join(", ");
      // A function returning a pointer to function: its parameters go inside ("R (*(A))(B)").
      const t: CxxType = ret.right
        ? {
          left: `${ret.left}(`,
          right: `)(${list})${ref}${ret.right}`,
          bare: `${ret.left}(${list})${ref}${ret.right}`,
        }
        : {
          left: `${ret.left} (`,
          right: `)(${list})${ref}`,
          bare: `${ret.left} (${list})${ref}`,
        };
      this.subs.push(t);
      return t;
    }
    if (c === "A") {
      this.pos++;
      let dim = "";
      if (this.#peek() !== "_") dim = String(this.#number());
      this.#expect("_");
      const t = arrayType(render(this.#type()), dim);
      this.subs.push(t);
      return t;
    }
    if (c === "M") {
      this.pos++;
      const cls = render(this.#type());
      const member = this.#type();
      const t: CxxType = member.bare !== undefined
        ? { left: `${member.left}${cls}::*`, right: member.right }
        : { left: `${member.left} ${cls}::*`, right: member.right };
      this.subs.push(t);
      return t;
    }
    if (c === "T") {
      const index = this.#templateParamIndex();
      const t = this.#resolveParam(index);
      const lazy: CxxType = { ...plain(""), param: index };
      if (this.#peek() === "I") {
        const args = this.#templateArgs();
        const full = plain(render(t) + args.text);
        this.subs.push(lazy, full);
        return full;
      }
      this.subs.push(lazy);
      return t;
    }
    if (c === "S") {
      const std = this.#peek(1);
      if (std === "t") {
        // St <unqualified-name>: a class in std
        const saved = this.templateArgs;
        const n = this.#name();
        this.templateArgs = saved;
        const t = plain(n.text);
        this.subs.push(t);
        return t;
      }
      const sub = this.#substitution();
      if (this.#peek() === "I") {
        const args = this.#templateArgs();
        const t = plain(render(sub) + args.text);
        this.subs.push(t);
        return t;
      }
      return sub;
    }
    if (c === "N" || c === "Z" || /\d/.test(c)) {
      const saved = this.templateArgs;
      const n = this.#name();
      this.templateArgs = saved;
      const t = plain(n.text);
      this.subs.push(t);
      return t;
    }
    throw new DemangleError(`unsupported type ${c}`);
  }
}

/** name<args>, with a space after an operator ending in "<" ("operator<< <char>"). */
function joinTemplate(name: string, args: string): string {
  return name.endsWith("<") ? `${name} ${args}` : name + args;
}

/** "ret name(params)" for a templated function's return type (declarators wrap the name). */
function renderDeclarator(ret: CxxType, inner: string): string {
  if (ret.bare !== undefined) return `${ret.left}${inner}${ret.right}`;
  return `${render(ret)} ${inner}`;
}
