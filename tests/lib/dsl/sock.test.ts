import { deepEqual, equal as assertEquals } from "node:assert/strict";
import { defineSchema } from "../../../lib/dsl/schema.ts";
import { decodeSockEndpoints, networkOrder, sockEndpointFields } from "../../../lib/dsl/sock.ts";

const record = defineSchema("rec", { pid: "u32", ...sockEndpointFields });

Deno.test("sock endpoints: ports in network order, addresses by family", () => {
  const v4 = record.decode(record.encode({
    pid: 1,
    family: 2,
    lport: networkOrder(8080),
    dport: networkOrder(41000),
    saddr: Uint8Array.of(127, 0, 0, 1, 0xff),
    daddr: Uint8Array.of(10, 0, 0, 2),
  }));
  deepEqual(decodeSockEndpoints(v4), {
    ip: 4,
    laddr: "127.0.0.1",
    lport: 8080,
    raddr: "10.0.0.2",
    rport: 41000,
  });
  const mapped = new Uint8Array(16);
  mapped.set([0xff, 0xff, 127, 0, 0, 1], 10);
  const loop6 = new Uint8Array(16);
  loop6[15] = 1;
  const v6 = record.decode(record.encode({
    family: 10,
    lport: networkOrder(22),
    dport: networkOrder(50000),
    saddr: loop6,
    daddr: mapped,
  }));
  deepEqual(decodeSockEndpoints(v6), {
    ip: 6,
    laddr: "::1",
    lport: 22,
    raddr: "::ffff:127.0.0.1",
    rport: 50000,
  });
});

Deno.test("sock endpoints: the fields keep their natural alignment after a u32", () => {
  assertEquals(record.offset("saddr"), 4);
  assertEquals(record.offset("family"), 36);
  assertEquals(record.size, 44);
});
