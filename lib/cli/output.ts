/** Writing to stdout synchronously, with a closed pipe (`| head`) reported as such. */

/** stdout was closed by the reader: the tool stops quietly. */
export class BrokenPipe extends Error {
  constructor() {
    super("stdout closed");
    this.name = "BrokenPipe";
  }
}

const encoder = new TextEncoder();

/** Writes all of `text` to stdout. */
export function writeOut(text: string): void {
  let bytes = encoder.encode(text);
  try {
    while (bytes.length) bytes = bytes.subarray(Deno.stdout.writeSync(bytes));
  } catch (e) {
    if (e instanceof Deno.errors.BrokenPipe) throw new BrokenPipe();
    throw e;
  }
}
