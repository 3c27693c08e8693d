#!/usr/bin/env -S deno run -A
/**
 * biolateness: the seed talk's spelling of biolatency (`biolateness -mT 1 5`).
 * The same tool, flags and output as tools/biolatency.ts, under this name.
 */
import { tool } from "./biolatency.ts";

export { tool };

if (import.meta.main) await tool.main(Deno.args, "biolateness");
