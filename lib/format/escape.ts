/**
 * Untrusted text from traced processes: process names, arguments, file names,
 * queries. Any of them can carry terminal escape sequences, so text output must
 * never pass them through, and JSON output must keep the exact bytes.
 *
 * One representation serves both. Bytes are decoded with {@link decodeBytes}:
 * valid UTF-8 becomes the usual characters, and each byte that is not valid
 * UTF-8 becomes a lone surrogate U+DC80..U+DCFF (Python's "surrogateescape"),
 * so no byte is lost. Then:
 *
 * - text output: {@link escapeText} spells out control characters, DEL, C1
 *   controls, bidi overrides and invalid bytes as `\x1b`-style escapes (as
 *   bpftrace's `%r` and `ls -b` do), and doubles `\` so the escaping can be undone;
 * - JSON output: {@link stringifyJson} (a `JSON.stringify` that also escapes
 *   DEL, C1 and bidi controls) keeps every character, and invalid bytes travel
 *   as `"\udc9b"`. A consumer gets the exact bytes back with
 *   {@link encodeBytes} here, or in Python with
 *   `s.encode("utf-8", "surrogateescape")`.
 *
 * @module
 */

/** Surrogate that stands for the invalid byte `b` (0x80..0xff). */
const ESCAPED_BYTE_BASE = 0xdc00;

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Length of the well-formed UTF-8 sequence starting at `i` (Unicode table 3-7), or 0. */
function sequenceLength(bytes: Uint8Array, i: number): number {
  const b0 = bytes[i];
  if (b0 < 0x80) return 1;
  const cont = (k: number, lo = 0x80, hi = 0xbf) =>
    i + k < bytes.length && bytes[i + k] >= lo && bytes[i + k] <= hi;
  if (b0 >= 0xc2 && b0 <= 0xdf) return cont(1) ? 2 : 0;
  if (b0 >= 0xe0 && b0 <= 0xef) {
    const lo = b0 === 0xe0 ? 0xa0 : 0x80;
    const hi = b0 === 0xed ? 0x9f : 0xbf; // ED A0.. would encode a surrogate
    return cont(1, lo, hi) && cont(2) ? 3 : 0;
  }
  if (b0 >= 0xf0 && b0 <= 0xf4) {
    const lo = b0 === 0xf0 ? 0x90 : 0x80;
    const hi = b0 === 0xf4 ? 0x8f : 0xbf; // above U+10FFFF otherwise
    return cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

/**
 * Decodes bytes as UTF-8 without losing any: a byte that is not part of a
 * well-formed sequence becomes the lone surrogate U+DC00 + byte.
 *
 * @example
 * ```ts
 * import { decodeBytes } from "./escape.ts";
 * decodeBytes(Uint8Array.of(0x68, 0x69, 0xff)); // "hi\udcff"
 * ```
 */
export function decodeBytes(bytes: Uint8Array): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    // Not valid UTF-8 throughout: decode sequence by sequence.
  }
  let out = "";
  let i = 0;
  while (i < bytes.length) {
    const n = sequenceLength(bytes, i);
    if (n === 0) {
      out += String.fromCharCode(ESCAPED_BYTE_BASE + bytes[i]);
      i++;
    } else {
      out += strictUtf8.decode(bytes.subarray(i, i + n));
      i += n;
    }
  }
  return out;
}

/**
 * Decodes a NUL-terminated C string such as `comm[16]` or a file name buffer:
 * the bytes up to the first NUL (or all of them when there is none), decoded
 * with {@link decodeBytes}.
 *
 * @example
 * ```ts
 * import { decodeCString } from "./escape.ts";
 * decodeCString(new TextEncoder().encode("bash\0\0\0garbage")); // "bash"
 * ```
 */
export function decodeCString(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return decodeBytes(end < 0 ? bytes : bytes.subarray(0, end));
}

/**
 * The exact bytes a string from {@link decodeBytes} came from (UTF-8, with
 * U+DC80..U+DCFF turned back into the single bytes they stand for). Other
 * lone surrogates, which decodeBytes never produces, become U+FFFD.
 */
export function encodeBytes(text: string): Uint8Array {
  const out: number[] = [];
  for (const ch of text) {
    let cp = ch.codePointAt(0)!;
    if (cp >= 0xdc80 && cp <= 0xdcff) {
      out.push(cp - ESCAPED_BYTE_BASE);
      continue;
    }
    if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd;
    if (cp < 0x80) out.push(cp);
    else if (cp < 0x800) out.push(0xc0 | (cp >> 6), 0x80 | (cp & 0x3f));
    else if (cp < 0x10000) {
      out.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
    } else {
      out.push(
        0xf0 | (cp >> 18),
        0x80 | ((cp >> 12) & 0x3f),
        0x80 | ((cp >> 6) & 0x3f),
        0x80 | (cp & 0x3f),
      );
    }
  }
  return Uint8Array.from(out);
}

/** Anything escapeText may have to rewrite; surrogates included so pairs take the slow path. */
const NEEDS_TEXT_ESCAPE =
  // deno-lint-ignore no-control-regex -- control characters are what we look for
  /[\x00-\x1f\x7f-\x9f\\\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]/;

/** Invisible characters that reorder how the rest of a line is displayed. */
function isBidiControl(cp: number): boolean {
  return cp === 0x061c || cp === 0x200e || cp === 0x200f || (cp >= 0x202a && cp <= 0x202e) ||
    (cp >= 0x2066 && cp <= 0x2069);
}

function hexByte(b: number): string {
  return "\\x" + b.toString(16).padStart(2, "0");
}

/**
 * Makes untrusted text safe to print on a terminal, keeping it readable:
 *
 * - C0 controls (including ESC, newline, tab), DEL and invalid bytes become
 *   `\xHH` with the byte value (`\x1b`, `\x0a`, `\x09`, `\x7f`, `\xff`);
 * - C1 controls U+0080..U+009F (an 8-bit CSI is U+009B) become their UTF-8
 *   bytes, `\xc2\x9b`;
 * - bidi controls (U+202E and friends) become `\u202e`;
 * - `\` becomes `\\`, so every escape reads back unambiguously;
 * - everything else, including any printable Unicode, is kept as is.
 *
 * Takes a string from {@link decodeBytes} / {@link decodeCString}, or raw bytes.
 *
 * @example
 * ```ts
 * import { escapeText } from "./escape.ts";
 * escapeText("evil\x1b[2Jname"); // "evil\\x1b[2Jname"
 * escapeText(Uint8Array.of(0x61, 0x0a, 0xff)); // "a\\x0a\\xff"
 * ```
 */
export function escapeText(text: string | Uint8Array): string {
  const s = typeof text === "string" ? text : decodeBytes(text);
  if (!NEEDS_TEXT_ESCAPE.test(s)) return s;
  let out = "";
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x20 || cp === 0x7f) out += hexByte(cp);
    else if (cp === 0x5c) out += "\\\\";
    else if (cp >= 0x80 && cp <= 0x9f) out += hexByte(0xc2) + hexByte(cp);
    else if (cp >= 0xdc80 && cp <= 0xdcff) out += hexByte(cp - ESCAPED_BYTE_BASE);
    else if ((cp >= 0xd800 && cp <= 0xdfff) || isBidiControl(cp)) {
      out += "\\u" + cp.toString(16).padStart(4, "0");
    } else out += ch;
  }
  return out;
}

/** Characters JSON.stringify leaves raw that a terminal could still act on. */
const JSON_UNSAFE = /[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * `JSON.stringify` for one line of `--json` output that keeps every character
 * of traced strings (so the exact bytes can be recovered) and is still safe on
 * a terminal: on top of JSON's own escapes (control characters as `\u001b`,
 * lone surrogates from invalid bytes as `\udcff`), DEL, C1 controls and bidi
 * controls are written as `\u` escapes too. Parsing the result gives back the
 * same values as `JSON.parse(JSON.stringify(value))`.
 *
 * @example
 * ```ts
 * import { decodeBytes, stringifyJson } from "./escape.ts";
 * stringifyJson({ comm: decodeBytes(Uint8Array.of(0x1b, 0x9b, 0x41)) });
 * // '{"comm":"\\u001b\\udc9bA"}'
 * ```
 */
export function stringifyJson(value: unknown): string {
  const json: string | undefined = JSON.stringify(value);
  if (json === undefined) throw new TypeError(`cannot represent ${typeof value} in JSON`);
  // These characters can only occur inside JSON strings, where \uXXXX means the same.
  return json.replace(JSON_UNSAFE, (ch) => "\\u" + ch.charCodeAt(0).toString(16).padStart(4, "0"));
}
