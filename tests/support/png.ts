/**
 * A minimal PNG decoder for screenshots (8-bit RGB or RGBA, not interlaced):
 * enough to ask "what color is the pixel at (x, y)" in browser tests.
 */
import { inflateSync } from "node:zlib";

/** A decoded image: RGBA bytes, row by row. */
export interface Image {
  width: number;
  height: number;
  rgba: Uint8Array;
}

/** Decodes a PNG file's bytes. */
export function decodePng(bytes: Uint8Array): Image {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const signature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (!signature.every((b, i) => bytes[i] === b)) throw new Error("not a PNG file");
  let width = 0, height = 0, colorType = 0;
  const idat: Uint8Array[] = [];
  for (let off = 8; off + 8 <= bytes.length;) {
    const length = view.getUint32(off);
    const type = String.fromCharCode(...bytes.subarray(off + 4, off + 8));
    const data = bytes.subarray(off + 8, off + 8 + length);
    if (type === "IHDR") {
      width = view.getUint32(off + 8);
      height = view.getUint32(off + 12);
      const depth = data[8], interlace = data[12];
      colorType = data[9];
      if (depth !== 8 || (colorType !== 2 && colorType !== 6) || interlace !== 0) {
        throw new Error(`unsupported PNG: depth ${depth}, color type ${colorType}`);
      }
    } else if (type === "IDAT") idat.push(data);
    else if (type === "IEND") break;
    off += 12 + length;
  }
  const raw = new Uint8Array(inflateSync(concat(idat)));
  const bpp = colorType === 6 ? 4 : 3;
  const stride = width * bpp;
  const pixels = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const row = pixels.subarray(y * stride, (y + 1) * stride);
    const prev = y > 0 ? pixels.subarray((y - 1) * stride, y * stride) : new Uint8Array(stride);
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? row[i - bpp] : 0, b = prev[i], c = i >= bpp ? prev[i - bpp] : 0;
      const predictor = filter === 0
        ? 0
        : filter === 1
        ? a
        : filter === 2
        ? b
        : filter === 3
        ? (a + b) >> 1
        : paeth(a, b, c);
      row[i] = (src[i] + predictor) & 0xff;
    }
  }
  const rgba = new Uint8Array(width * height * 4);
  for (let p = 0; p < width * height; p++) {
    rgba[p * 4] = pixels[p * bpp];
    rgba[p * 4 + 1] = pixels[p * bpp + 1];
    rgba[p * 4 + 2] = pixels[p * bpp + 2];
    rgba[p * 4 + 3] = bpp === 4 ? pixels[p * bpp + 3] : 255;
  }
  return { width, height, rgba };
}

/** The pixel at (x, y) as "rgb(r,g,b)". */
export function pixel(img: Image, x: number, y: number): string {
  const i = (Math.round(y) * img.width + Math.round(x)) * 4;
  return `rgb(${img.rgba[i]},${img.rgba[i + 1]},${img.rgba[i + 2]})`;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
