/**
 * IP address text against glibc's inet_ntop(3) (what bcc and libbpf-tools
 * print): fixed cases for each rule, then random addresses shaped to hit
 * the zero-run and embedded-IPv4 rules, compared with Python's
 * socket.inet_ntop (which calls glibc's).
 */
import { equal as assertEquals, throws } from "node:assert/strict";
import {
  AF_INET,
  formatInetAddress,
  formatIpv4,
  formatIpv6,
  ntohs,
} from "../../../lib/format/inet.ts";
import { run } from "../../support/process.ts";

function v6(text: string): Uint8Array {
  // a full, uncompressed "xxxx:...:xxxx" form
  const words = text.split(":").map((w) => parseInt(w, 16));
  const out = new Uint8Array(16);
  words.forEach((w, i) => {
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  });
  return out;
}

Deno.test("formatIpv4: dotted quad", () => {
  assertEquals(formatIpv4(Uint8Array.of(127, 0, 0, 1)), "127.0.0.1");
  assertEquals(formatIpv4(Uint8Array.of(255, 0, 10, 200, 9, 9)), "255.0.10.200");
  assertEquals(formatInetAddress(AF_INET, Uint8Array.of(10, 1, 2, 3)), "10.1.2.3");
});

Deno.test("formatIpv6: glibc's rules", () => {
  const cases: [string, string][] = [
    ["0:0:0:0:0:0:0:0", "::"],
    ["0:0:0:0:0:0:0:1", "::1"],
    ["2001:db8:0:0:0:0:0:1", "2001:db8::1"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"], // the first of two equal runs
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"], // one zero group stays
    ["fe80:0:0:0:abcd:0:0:0", "fe80::abcd:0:0:0"],
    ["1:0:0:0:0:0:0:0", "1::"],
    ["0:0:0:0:0:ffff:7f00:1", "::ffff:127.0.0.1"], // IPv4-mapped
    ["0:0:0:0:0:0:a01:203", "::10.1.2.3"], // IPv4-compatible
    ["0:0:0:0:1:ffff:7f00:1", "::1:ffff:7f00:1"],
    ["ABCD:EF01:0:0:0:0:0:0", "abcd:ef01::"],
  ];
  for (const [full, text] of cases) assertEquals(formatIpv6(v6(full)), text, full);
});

Deno.test("formatIpv6: same as glibc inet_ntop on random zero-heavy addresses", async () => {
  const addrs: Uint8Array[] = [];
  for (let n = 0; n < 2000; n++) {
    const a = new Uint8Array(16);
    for (let w = 0; w < 8; w++) {
      const r = Math.random();
      const word = r < 0.6 ? 0 : r < 0.7 ? 0xffff : r < 0.8 ? 1 : Math.floor(Math.random() * 65536);
      a[2 * w] = word >> 8;
      a[2 * w + 1] = word & 0xff;
    }
    addrs.push(a);
  }
  const hex = addrs.map((a) => Array.from(a, (b) => b.toString(16).padStart(2, "0")).join(""));
  const out = await run("python3", [
    "-c",
    "import socket,sys\nfor h in sys.stdin.read().split():\n" +
    "    print(socket.inet_ntop(socket.AF_INET6, bytes.fromhex(h)))",
  ], { input: hex.join("\n") });
  const expected = out.stdout.trim().split("\n");
  assertEquals(expected.length, addrs.length);
  addrs.forEach((a, i) => assertEquals(formatIpv6(a), expected[i], hex[i]));
});

Deno.test("formatInetAddress: other families are an error; ntohs swaps bytes", () => {
  throws(() => formatInetAddress(1, new Uint8Array(16)), /unknown address family 1/);
  assertEquals(ntohs(0x5000), 80);
  assertEquals(ntohs(ntohs(54321)), 54321);
});
