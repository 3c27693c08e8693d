import { assertEquals, assertThrows } from "./assert.ts";
import {
  decodeBytes,
  decodeCString,
  encodeBytes,
  escapeText,
  stringifyJson,
} from "../../../lib/format/escape.ts";

const bytes = (...b: number[]) => Uint8Array.from(b);

Deno.test("escapeText: printable text, spaces and Unicode pass unchanged", () => {
  assertEquals(escapeText("kworker/0:1H-kblockd"), "kworker/0:1H-kblockd");
  assertEquals(escapeText("my file ünïcødé 日本 🚀"), "my file ünïcødé 日本 🚀");
  assertEquals(escapeText(""), "");
});

Deno.test("escapeText: control characters are spelled out as \\xHH", () => {
  assertEquals(escapeText("a\x1b[2J\x1b]0;owned\x07b"), "a\\x1b[2J\\x1b]0;owned\\x07b");
  assertEquals(escapeText("line1\nline2\r"), "line1\\x0aline2\\x0d");
  assertEquals(escapeText("col\tcol"), "col\\x09col");
  assertEquals(escapeText("nul\0"), "nul\\x00");
  assertEquals(escapeText("del\x7f"), "del\\x7f");
});

Deno.test("escapeText: C1 controls, bidi overrides, backslashes", () => {
  assertEquals(escapeText("csi\u009b31m"), "csi\\xc2\\x9b31m");
  assertEquals(escapeText("abc\u202edcba"), "abc\\u202edcba");
  assertEquals(escapeText("C:\\x1b"), "C:\\\\x1b"); // a literal backslash cannot pass for an escape
});

Deno.test("escapeText: invalid UTF-8 bytes are spelled out, valid sequences kept", () => {
  assertEquals(escapeText(bytes(0x61, 0xff, 0x62)), "a\\xffb");
  assertEquals(escapeText(bytes(0xc3, 0xa9)), "é");
  assertEquals(escapeText(bytes(0xc3)), "\\xc3"); // truncated sequence
  assertEquals(escapeText(bytes(0xe2, 0x82, 0x41)), "\\xe2\\x82A");
  assertEquals(escapeText(bytes(0xc0, 0xaf)), "\\xc0\\xaf"); // overlong "/"
  assertEquals(escapeText(bytes(0xed, 0xa0, 0x80)), "\\xed\\xa0\\x80"); // encoded surrogate
  assertEquals(escapeText(bytes(0xf4, 0x90, 0x80, 0x80)), "\\xf4\\x90\\x80\\x80"); // > U+10FFFF
  assertEquals(escapeText(bytes(0x1b, 0x9b)), "\\x1b\\x9b"); // raw 8-bit CSI byte
  assertEquals(escapeText("lone \ud800 surrogate"), "lone \\ud800 surrogate");
});

Deno.test("decodeBytes/encodeBytes: every byte string survives the round trip", () => {
  const samples = [
    bytes(),
    bytes(0xef, 0xbb, 0xbf, 0x41), // BOM is kept
    bytes(0x80, 0x81, 0xfe, 0xff),
    bytes(0xf0, 0x9f, 0x9a, 0x80, 0xf0, 0x9f, 0x9a),
    new TextEncoder().encode("plain ascii"),
  ];
  let seed = 7;
  for (let n = 0; n < 200; n++) {
    const random = new Uint8Array(n % 40);
    for (let i = 0; i < random.length; i++) {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      random[i] = seed % 256;
    }
    samples.push(random);
  }
  for (const sample of samples) assertEquals(encodeBytes(decodeBytes(sample)), sample);
  assertEquals(decodeBytes(bytes(0xef, 0xbb, 0xbf)), "\ufeff");
  assertEquals(decodeBytes(bytes(0x68, 0x69, 0xff)), "hi\udcff");
});

Deno.test("decodeCString: stops at the first NUL", () => {
  const comm = new Uint8Array(16);
  comm.set(new TextEncoder().encode("bash"));
  comm.set(new TextEncoder().encode("junk"), 8);
  assertEquals(decodeCString(comm), "bash");
  assertEquals(decodeCString(new TextEncoder().encode("sixteen-chars-xx")), "sixteen-chars-xx");
  assertEquals(decodeCString(bytes(0, 0x41)), "");
  assertEquals(decodeCString(bytes(0x1b, 0xff, 0)), "\x1b\udcff");
});

Deno.test("stringifyJson: exact bytes survive, and the JSON text is terminal-safe", () => {
  const raw = bytes(0x1b, 0x5b, 0x32, 0x4a, 0x0a, 0x7f, 0xc2, 0x9b, 0xff, 0xe2, 0x80, 0xae, 0x22);
  const json = stringifyJson({ comm: decodeBytes(raw) });
  assertEquals(json, '{"comm":"\\u001b[2J\\n\\u007f\\u009b\\udcff\\u202e\\""}');
  // Only printable ASCII in the output line.
  assertEquals(/^[\x20-\x7e]*$/.test(json), true);
  // A consumer recovers the exact bytes.
  assertEquals(encodeBytes(JSON.parse(json).comm), raw);
  assertEquals(JSON.parse(json), JSON.parse(JSON.stringify({ comm: decodeBytes(raw) })));
  assertThrows(() => stringifyJson(undefined), TypeError);
});
