// SHA-256 (FIPS 180-4) that takes its input in pieces. WebCrypto's `crypto.subtle.digest` only
// hashes a whole buffer at once (https://github.com/w3c/webcrypto/issues/73), so hashing a file
// there means holding all of it in memory; this one reads a large file a slice at a time. It is
// slower than WebCrypto (roughly 100–200 MB/s in V8 against several hundred), which is why
// `sha256Hex` below uses WebCrypto for files that fit comfortably in memory.

const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
])

/** An incremental SHA-256: `update` any number of times, then `digest` once. */
export class Sha256 {
  private readonly h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19])
  private readonly w = new Uint32Array(64)
  private readonly block = new Uint8Array(64)
  private buffered = 0
  private length = 0
  private done = false

  /** Adds bytes to the message. */
  update (data: Uint8Array): this {
    if (this.done) throw new Error('sha256: update after digest')
    this.length += data.length
    let i = 0
    if (this.buffered > 0) {
      const take = Math.min(64 - this.buffered, data.length)
      this.block.set(data.subarray(0, take), this.buffered)
      this.buffered += take
      i = take
      if (this.buffered < 64) return this
      this.compress(this.block, 0)
      this.buffered = 0
    }
    for (; i + 64 <= data.length; i += 64) this.compress(data, i)
    if (i < data.length) {
      this.block.set(data.subarray(i), 0)
      this.buffered = data.length - i
    }
    return this
  }

  /** The 32-byte digest. */
  digest (): Uint8Array {
    if (this.done) throw new Error('sha256: digest twice')
    const bits = this.length * 8
    const pad = new Uint8Array((this.buffered < 56 ? 64 : 128) - this.buffered)
    pad[0] = 0x80
    const view = new DataView(pad.buffer)
    // The length in bits as a 64-bit big-endian number (exact up to 2^53 bytes).
    view.setUint32(pad.length - 8, Math.floor(bits / 0x1_0000_0000))
    view.setUint32(pad.length - 4, bits >>> 0)
    this.update(pad)
    this.done = true
    const out = new Uint8Array(32)
    const outView = new DataView(out.buffer)
    for (let j = 0; j < 8; j++) outView.setUint32(j * 4, this.h[j])
    return out
  }

  private compress (data: Uint8Array, at: number): void {
    const w = this.w
    for (let t = 0; t < 16; t++) {
      const o = at + t * 4
      w[t] = (data[o] << 24) | (data[o + 1] << 16) | (data[o + 2] << 8) | data[o + 3]
    }
    for (let t = 16; t < 64; t++) {
      const a = w[t - 15]
      const b = w[t - 2]
      const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3)
      const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10)
      w[t] = (w[t - 16] + s0 + w[t - 7] + s1) | 0
    }
    const h = this.h
    let a = h[0]; let b = h[1]; let c = h[2]; let d = h[3]; let e = h[4]; let f = h[5]; let g = h[6]; let hh = h[7]
    for (let t = 0; t < 64; t++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))
      const ch = (e & f) ^ (~e & g)
      const t1 = (hh + S1 + ch + K[t] + w[t]) | 0
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))
      const maj = (a & b) ^ (a & c) ^ (b & c)
      const t2 = (S0 + maj) | 0
      hh = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh
  }
}

/** Lower-case hex of bytes. */
export const toHex = (bytes: Uint8Array): string => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')

/** Files up to this size are hashed by WebCrypto in one piece (their bytes are held once). */
export const WEBCRYPTO_HASH_LIMIT = 64 * 1024 * 1024
/** The slice read at a time when hashing a larger file incrementally. */
const HASH_SLICE = 4 * 1024 * 1024

/**
 * The SHA-256 of a Blob as 64 hex digits. Up to `inMemoryLimit` bytes (64 MiB by default) the
 * whole file is read into memory once and hashed by WebCrypto (fast; costs the file's size in
 * memory for a moment); above it the file is read 4 MiB at a time and hashed incrementally
 * (memory stays flat, at some cost in speed). `onProgress` hears the bytes hashed so far.
 */
export async function sha256Hex (
  blob: Blob,
  { inMemoryLimit = WEBCRYPTO_HASH_LIMIT, onProgress, signal }: { inMemoryLimit?: number, onProgress?: (hashed: number) => void, signal?: AbortSignal } = {}
): Promise<string> {
  const subtle = globalThis.crypto?.subtle
  if (subtle !== undefined && blob.size <= inMemoryLimit) {
    const digest = await subtle.digest('SHA-256', await blob.arrayBuffer())
    onProgress?.(blob.size)
    return toHex(new Uint8Array(digest))
  }
  const hash = new Sha256()
  for (let at = 0; at < blob.size; at += HASH_SLICE) {
    signal?.throwIfAborted()
    hash.update(new Uint8Array(await blob.slice(at, at + HASH_SLICE).arrayBuffer()))
    onProgress?.(Math.min(blob.size, at + HASH_SLICE))
  }
  return toHex(hash.digest())
}
