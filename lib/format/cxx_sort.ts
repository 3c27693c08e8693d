/**
 * GNU libstdc++'s `std::sort`, step for step, so that equal elements end up in
 * the same order as in a C++ program built with GCC. bpftrace sorts its
 * histogram keys with `std::sort`; matching its output for keys with equal
 * totals needs the same (unstable) algorithm: introsort with median-of-three
 * pivots, heapsort past the depth limit, then a final insertion sort.
 * For 16 elements or fewer it is a plain (stable) insertion sort.
 *
 * @module
 */

/** `_S_threshold` in libstdc++: ranges this short are left to insertion sort. */
const INSERTION_THRESHOLD = 16;

/** Strict-weak-ordering "less than", like the comparator given to std::sort. */
export type Less<T> = (a: T, b: T) => boolean;

/**
 * Sorts `items` in place exactly like libstdc++'s `std::sort(first, last, less)`.
 *
 * @example
 * ```ts
 * import { cxxSort } from "./cxx_sort.ts";
 * const totals = [3, 1, 2];
 * cxxSort(totals, (a, b) => a < b); // totals is now [1, 2, 3]
 * ```
 */
export function cxxSort<T>(items: T[], less: Less<T>): T[] {
  const n = items.length;
  if (n > 1) {
    introsortLoop(items, 0, n, 2 * floorLog2(n), less);
    finalInsertionSort(items, 0, n, less);
  }
  return items;
}

/** `std::__lg`: index of the highest set bit. */
function floorLog2(n: number): number {
  return 31 - Math.clz32(n);
}

function swap<T>(a: T[], i: number, j: number): void {
  const t = a[i];
  a[i] = a[j];
  a[j] = t;
}

/** `std::__introsort_loop`: quicksort down to short ranges, heapsort when too deep. */
function introsortLoop<T>(a: T[], first: number, last: number, depth: number, less: Less<T>) {
  while (last - first > INSERTION_THRESHOLD) {
    if (depth === 0) {
      heapSort(a, first, last, less); // std::__partial_sort(first, last, last)
      return;
    }
    depth--;
    const cut = partitionPivot(a, first, last, less);
    introsortLoop(a, cut, last, depth, less);
    last = cut;
  }
}

/** `std::__unguarded_partition_pivot`. */
function partitionPivot<T>(a: T[], first: number, last: number, less: Less<T>): number {
  const mid = first + Math.floor((last - first) / 2);
  moveMedianToFirst(a, first, first + 1, mid, last - 1, less);
  return unguardedPartition(a, first + 1, last, first, less);
}

/** `std::__move_median_to_first`. */
function moveMedianToFirst<T>(
  a: T[],
  result: number,
  x: number,
  y: number,
  z: number,
  less: Less<T>,
): void {
  if (less(a[x], a[y])) {
    if (less(a[y], a[z])) swap(a, result, y);
    else if (less(a[x], a[z])) swap(a, result, z);
    else swap(a, result, x);
  } else if (less(a[x], a[z])) swap(a, result, x);
  else if (less(a[y], a[z])) swap(a, result, z);
  else swap(a, result, y);
}

/** `std::__unguarded_partition` around the element at `pivot`. */
function unguardedPartition<T>(
  a: T[],
  first: number,
  last: number,
  pivot: number,
  less: Less<T>,
): number {
  while (true) {
    while (less(a[first], a[pivot])) first++;
    last--;
    while (less(a[pivot], a[last])) last--;
    if (!(first < last)) return first;
    swap(a, first, last);
    first++;
  }
}

/** `std::__final_insertion_sort`. */
function finalInsertionSort<T>(a: T[], first: number, last: number, less: Less<T>): void {
  if (last - first > INSERTION_THRESHOLD) {
    insertionSort(a, first, first + INSERTION_THRESHOLD, less);
    for (let i = first + INSERTION_THRESHOLD; i < last; i++) unguardedLinearInsert(a, i, less);
  } else {
    insertionSort(a, first, last, less);
  }
}

/** `std::__insertion_sort`. */
function insertionSort<T>(a: T[], first: number, last: number, less: Less<T>): void {
  if (first === last) return;
  for (let i = first + 1; i < last; i++) {
    if (less(a[i], a[first])) {
      const value = a[i];
      for (let j = i; j > first; j--) a[j] = a[j - 1];
      a[first] = value;
    } else {
      unguardedLinearInsert(a, i, less);
    }
  }
}

/** `std::__unguarded_linear_insert`. */
function unguardedLinearInsert<T>(a: T[], last: number, less: Less<T>): void {
  const value = a[last];
  let next = last - 1;
  while (less(value, a[next])) {
    a[last] = a[next];
    last = next;
    next--;
  }
  a[last] = value;
}

/** `std::__partial_sort(first, last, last)`: make_heap then sort_heap. */
function heapSort<T>(a: T[], first: number, last: number, less: Less<T>): void {
  const len = last - first;
  if (len >= 2) {
    // std::__make_heap
    for (let parent = Math.floor((len - 2) / 2);; parent--) {
      adjustHeap(a, first, parent, len, a[first + parent], less);
      if (parent === 0) break;
    }
  }
  // std::__sort_heap
  while (last - first > 1) {
    last--;
    const value = a[last];
    a[last] = a[first];
    adjustHeap(a, first, 0, last - first, value, less);
  }
}

/** `std::__adjust_heap` followed by `std::__push_heap`. */
function adjustHeap<T>(
  a: T[],
  first: number,
  holeIndex: number,
  len: number,
  value: T,
  less: Less<T>,
): void {
  const topIndex = holeIndex;
  let secondChild = holeIndex;
  while (secondChild < Math.floor((len - 1) / 2)) {
    secondChild = 2 * (secondChild + 1);
    if (less(a[first + secondChild], a[first + secondChild - 1])) secondChild--;
    a[first + holeIndex] = a[first + secondChild];
    holeIndex = secondChild;
  }
  if ((len & 1) === 0 && secondChild === Math.floor((len - 2) / 2)) {
    secondChild = 2 * (secondChild + 1);
    a[first + holeIndex] = a[first + secondChild - 1];
    holeIndex = secondChild - 1;
  }
  let parent = Math.floor((holeIndex - 1) / 2);
  while (holeIndex > topIndex && less(a[first + parent], value)) {
    a[first + holeIndex] = a[first + parent];
    holeIndex = parent;
    parent = Math.floor((holeIndex - 1) / 2);
  }
  a[first + holeIndex] = value;
}
