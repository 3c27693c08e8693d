/**
 * Every bench run keeps its raw numbers: the JSON it prints last is also
 * written to bench/results/NAME-YYYY-MM-DDTHH-MM-SSZ.json, so a figure in
 * the README can be traced to the run that produced it.
 */

const RESULTS = new URL("./results/", import.meta.url);

/** Prints `data` as one JSON line and saves it; returns the file written. */
export function keepResult(name: string, data: unknown): string {
  const json = JSON.stringify(data);
  console.log(json);
  const stamp = new Date().toISOString().replace(/\.\d+Z$/, "Z").replaceAll(":", "-");
  const file = new URL(`${name}-${stamp}.json`, RESULTS);
  Deno.mkdirSync(RESULTS, { recursive: true });
  Deno.writeTextFileSync(file, json + "\n");
  console.error(`raw results: bench/results/${name}-${stamp}.json`);
  return file.pathname;
}
