import { deepEqual, throws } from "node:assert/strict";
import { MAX_PORTS, portList } from "../../../lib/cli/ports.ts";
import { UsageError } from "../../../lib/cli/usage.ts";

Deno.test("portList: comma-separated ports, duplicates dropped", () => {
  deepEqual(portList("80", "-L"), [80]);
  deepEqual(portList("80,443,80,65535,1", "-L"), [80, 443, 65535, 1]);
});

Deno.test("portList: usage errors name the flag and the bad part", () => {
  for (const bad of ["", "0", "65536", "80,", "x", "8o", "-1", "1.5", " 80"]) {
    throws(
      () => portList(bad, "-D"),
      (e: unknown) => e instanceof UsageError && /-D/.test(e.message),
    );
  }
  const many = Array.from({ length: MAX_PORTS + 1 }, (_, i) => String(i + 1)).join(",");
  throws(() => portList(many, "-L"), /too many ports in -L/);
});
