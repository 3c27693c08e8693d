import { assertEquals } from "./assert.ts";
import { cxxSort } from "../../../lib/format/cxx_sort.ts";

/** Sorts indexes 0..n-1 by `values`, as `std::sort` on (index, value) pairs by value. */
function order(values: number[]): number[] {
  const items = values.map((value, index) => ({ index, value }));
  cxxSort(items, (a, b) => a.value < b.value);
  return items.map((item) => item.index);
}

function fnv1a(text: string): string {
  let hash = 0x811c9dc5;
  for (const ch of text) hash = Math.imul(hash ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return hash.toString(16);
}

Deno.test("cxxSort: sorts", () => {
  assertEquals(cxxSort([], (a, b) => a < b), []);
  assertEquals(cxxSort([5, 3, 9, 1, 1], (a, b) => a < b), [1, 1, 3, 5, 9]);
  const big = Array.from({ length: 1000 }, (_, i) => (i * 7919) % 1000);
  assertEquals(cxxSort([...big], (a, b) => a < b), [...big].sort((a, b) => a - b));
});

Deno.test("cxxSort: up to 16 elements it is stable (insertion sort)", () => {
  assertEquals(order([2, 1, 2, 1, 0, 2, 1, 0]), [4, 7, 1, 3, 6, 0, 2, 5]);
});

Deno.test("cxxSort: equal elements end where GCC 12's std::sort puts them", () => {
  // Expected orders were produced by g++ 12 (libstdc++) std::sort on the same input.
  assertEquals(
    order([3, 1, 2, 1, 3, 0, 2, 2, 1, 0, 3, 1, 2, 0, 0, 1, 3, 2, 1, 0]),
    [19, 14, 5, 13, 9, 1, 18, 15, 11, 8, 3, 7, 12, 6, 17, 2, 10, 4, 16, 0],
  );
  // Musser's median-of-3 killer (values halved for ties) drives introsort into its heapsort.
  const k = 512;
  const killer = new Array(2 * k);
  for (let i = 1; i <= k; i++) {
    if (i % 2) {
      killer[i - 1] = i;
      killer[i] = k + i;
    }
    killer[k + i - 1] = 2 * i;
  }
  assertEquals(fnv1a(order(killer.map((v) => Math.floor(v / 2))).join(" ")), "91274a95");
});
