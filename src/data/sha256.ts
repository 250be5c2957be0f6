/**
 * SHA-256 (FIPS 180-4) for verifying downloads. Web Crypto's `crypto.subtle.digest` has no
 * streaming interface, so {@linkcode Sha256} hashes incrementally in constant memory, and
 * {@linkcode sha256File} uses Web Crypto for files that fit comfortably in memory and the
 * incremental hasher for larger ones.
 *
 * @module
 */

// First 32 bits of the fractional parts of the cube roots of the first 64 primes.
const K = new Int32Array([
  0x428a2f98,
  0x71374491,
  0xb5c0fbcf,
  0xe9b5dba5,
  0x3956c25b,
  0x59f111f1,
  0x923f82a4,
  0xab1c5ed5,
  0xd807aa98,
  0x12835b01,
  0x243185be,
  0x550c7dc3,
  0x72be5d74,
  0x80deb1fe,
  0x9bdc06a7,
  0xc19bf174,
  0xe49b69c1,
  0xefbe4786,
  0x0fc19dc6,
  0x240ca1cc,
  0x2de92c6f,
  0x4a7484aa,
  0x5cb0a9dc,
  0x76f988da,
  0x983e5152,
  0xa831c66d,
  0xb00327c8,
  0xbf597fc7,
  0xc6e00bf3,
  0xd5a79147,
  0x06ca6351,
  0x14292967,
  0x27b70a85,
  0x2e1b2138,
  0x4d2c6dfc,
  0x53380d13,
  0x650a7354,
  0x766a0abb,
  0x81c2c92e,
  0x92722c85,
  0xa2bfe8a1,
  0xa81a664b,
  0xc24b8b70,
  0xc76c51a3,
  0xd192e819,
  0xd6990624,
  0xf40e3585,
  0x106aa070,
  0x19a4c116,
  0x1e376c08,
  0x2748774c,
  0x34b0bcb5,
  0x391c0cb3,
  0x4ed8aa4a,
  0x5b9cca4f,
  0x682e6ff3,
  0x748f82ee,
  0x78a5636f,
  0x84c87814,
  0x8cc70208,
  0x90befffa,
  0xa4506ceb,
  0xbef9a3f7,
  0xc67178f2,
]);

// First 32 bits of the fractional parts of the square roots of the first 8 primes.
const H0 = [
  0x6a09e667,
  0xbb67ae85,
  0x3c6ef372,
  0xa54ff53a,
  0x510e527f,
  0x9b05688c,
  0x1f83d9ab,
  0x5be0cd19,
];

/**
 * Incremental SHA-256: feed any number of chunks with `update`, then call `digest` once.
 *
 * @example
 * ```ts
 * import { Sha256 } from "./sha256.ts";
 * const h = new Sha256();
 * h.update(new TextEncoder().encode("ab"));
 * h.update(new TextEncoder().encode("c"));
 * console.log(h.hex()); // "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
 * ```
 */
export class Sha256 {
  #h = Int32Array.from(H0);
  #w = new Int32Array(64);
  #block = new Uint8Array(64);
  #blockLen = 0;
  #bytes = 0;
  #done = false;

  /**
   * Adds bytes to the message.
   *
   * @param data The next chunk.
   * @returns This hasher, for chaining.
   * @throws {Error} After `digest` has been called.
   */
  update(data: Uint8Array): this {
    if (this.#done) throw new Error("update must not be called after digest");
    let pos = 0;
    this.#bytes += data.length;
    if (this.#blockLen > 0) {
      const take = Math.min(64 - this.#blockLen, data.length);
      this.#block.set(data.subarray(0, take), this.#blockLen);
      this.#blockLen += take;
      pos = take;
      if (this.#blockLen < 64) return this;
      this.#compress(this.#block, 0);
      this.#blockLen = 0;
    }
    // Whole blocks straight from the input, no copy.
    for (; pos + 64 <= data.length; pos += 64) this.#compress(data, pos);
    if (pos < data.length) {
      this.#block.set(data.subarray(pos), 0);
      this.#blockLen = data.length - pos;
    }
    return this;
  }

  /**
   * Finishes the hash (padding and length) and returns the 32-byte digest.
   *
   * @returns The digest.
   * @throws {Error} When called twice.
   */
  digest(): Uint8Array {
    if (this.#done) throw new Error("digest must be called only once");
    const bitsHi = Math.floor(this.#bytes / 0x20000000); // bytes·8 / 2^32
    const bitsLo = (this.#bytes * 8) >>> 0;
    const block = this.#block;
    let len = this.#blockLen;
    block[len++] = 0x80;
    if (len > 56) {
      block.fill(0, len);
      this.#compress(block, 0);
      len = 0;
    }
    block.fill(0, len, 56);
    const view = new DataView(block.buffer);
    view.setUint32(56, bitsHi);
    view.setUint32(60, bitsLo);
    this.#compress(block, 0);
    this.#done = true;
    const out = new Uint8Array(32);
    const outView = new DataView(out.buffer);
    for (let i = 0; i < 8; i++) outView.setInt32(i * 4, this.#h[i]);
    return out;
  }

  /**
   * Finishes the hash and returns it as 64 lowercase hexadecimal digits.
   *
   * @returns The hex digest.
   */
  hex(): string {
    return toHex(this.digest());
  }

  #compress(data: Uint8Array, off: number): void {
    const w = this.#w, h = this.#h;
    for (let i = 0; i < 16; i++) {
      const p = off + i * 4;
      w[i] = (data[p] << 24) | (data[p + 1] << 16) | (data[p + 2] << 8) | data[p + 3];
    }
    for (let i = 16; i < 64; i++) {
      const x = w[i - 15], y = w[i - 2];
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
    }
    let a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (let i = 0; i < 64; i++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const ch = (e & f) ^ (~e & g);
      const t1 = (hh + S1 + ch + K[i] + w[i]) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const maj = (a & b) ^ (a & c) ^ (b & c);
      const t2 = (S0 + maj) | 0;
      hh = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    h[0] = (h[0] + a) | 0;
    h[1] = (h[1] + b) | 0;
    h[2] = (h[2] + c) | 0;
    h[3] = (h[3] + d) | 0;
    h[4] = (h[4] + e) | 0;
    h[5] = (h[5] + f) | 0;
    h[6] = (h[6] + g) | 0;
    h[7] = (h[7] + hh) | 0;
  }
}

/**
 * Lowercase hexadecimal form of bytes.
 *
 * @param bytes The bytes.
 * @returns Two hex digits per byte.
 *
 * @example
 * ```ts
 * import { toHex } from "./sha256.ts";
 * toHex(new Uint8Array([0, 171, 255])); // "00abff"
 * ```
 */
export function toHex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/** Options of {@linkcode sha256File}. */
export interface Sha256FileOptions {
  /** Files up to this size (bytes) are read whole and hashed by Web Crypto; default 512 MiB. */
  maxInMemory?: number;
  /** Read size for larger files; default 4 MiB. */
  chunkSize?: number;
}

/**
 * SHA-256 of a file as lowercase hex.
 *
 * @param path File to hash.
 * @param options When to stream instead of reading the file whole.
 * @returns The hex digest.
 * @throws {Deno.errors.NotFound} When the file does not exist.
 *
 * @example
 * ```ts ignore
 * import { sha256File } from "./sha256.ts";
 * console.log(await sha256File("data/cifar-100-binary.tar.gz"));
 * ```
 */
export async function sha256File(path: string, options: Sha256FileOptions = {}): Promise<string> {
  const maxInMemory = options.maxInMemory ?? 512 * 1024 * 1024;
  const chunkSize = options.chunkSize ?? 4 * 1024 * 1024;
  if (!Number.isInteger(chunkSize) || chunkSize < 1) {
    throw new RangeError(`chunkSize must be a positive integer, got ${chunkSize}`);
  }
  const { size } = await Deno.stat(path);
  if (size <= maxInMemory) {
    const data = await Deno.readFile(path);
    return toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", data)));
  }
  const hasher = new Sha256();
  using file = await Deno.open(path, { read: true });
  const buf = new Uint8Array(chunkSize);
  for (;;) {
    const n = await file.read(buf);
    if (n === null) break;
    hasher.update(buf.subarray(0, n));
  }
  return hasher.hex();
}
