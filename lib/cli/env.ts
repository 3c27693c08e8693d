/**
 * Reading the toolkit's own environment switches (BPFTK_*) without needing
 * --allow-env: a tool run with fewer permissions (flamegraph needs none)
 * treats an unreadable variable as unset instead of crashing.
 */
export function envSwitch(name: string): string | undefined {
  if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") {
    return undefined;
  }
  return Deno.env.get(name);
}
