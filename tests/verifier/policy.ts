/**
 * Diagnostic codes by which our verifier refuses, on purpose, programs the
 * privileged kernel accepts (its strict mode agrees): reads of never-written
 * stack, kernel addresses leaving the program, a pointer returned. Rates of
 * false rejects are counted without them.
 *
 * @module
 */

/** Codes where we refuse what the privileged kernel accepts, on purpose. */
export const POLICY_CODES: ReadonlySet<string> = new Set([
  "uninit-stack",
  "pointer-leak",
  "bad-return-value",
]);
