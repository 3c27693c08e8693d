/**
 * The assertions the format tests use, from node:assert/strict, under the
 * names of Deno's std (which cannot be installed here).
 *
 * @module
 */
import assert from "node:assert/strict";

/** Deep strict equality, with a diff on failure. */
export function assertEquals<T>(actual: T, expected: T, message?: string): void {
  assert.deepStrictEqual(actual, expected, message);
}

/** Asserts `fn` throws an instance of `errorClass`. */
export function assertThrows(
  fn: () => unknown,
  // deno-lint-ignore no-explicit-any
  errorClass: new (...args: any[]) => Error,
): void {
  assert.throws(fn, errorClass);
}

/** Asserts a condition holds. */
export function assertOk(value: unknown, message?: string): asserts value {
  assert.ok(value, message);
}
