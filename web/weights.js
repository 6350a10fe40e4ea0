// Weight shards (web/MANIFEST.md, Weights): where each part of a weight goes in its device form, and the widening of
// float16-stored weights (`--weights fp16`) back to float32, on the CPU: kernels never see float16.

/**
 * Widen IEEE float16 bit patterns to float32 bit patterns, exactly (every float16 is a float32): normals, subnormals,
 * signed zeros, infinities, and NaNs with their payload. Table-free, one pass.
 * @param {Uint16Array} src  float16 values
 * @param {Uint32Array} dst  their float32 bits (at least src.length elements)
 * @returns {Uint32Array} dst
 */
export function halfToFloat(src, dst) {
  const n = src.length;
  for (let i = 0; i < n; i++) {
    const h = src[i];
    const sign = (h & 0x8000) << 16;
    const exp = h & 0x7c00;
    if (exp === 0x7c00) {
      dst[i] = sign | 0x7f800000 | ((h & 0x3ff) << 13); // infinity or NaN
    } else if (exp !== 0) {
      dst[i] = sign | (((h & 0x7fff) + 0x1c000) << 13); // normal: rebias the exponent by 127 - 15 = 112
    } else {
      let mant = h & 0x3ff;
      if (mant === 0) {
        dst[i] = sign; // signed zero
      } else { // subnormal: mant * 2^-24, a normal float32 once shifted to its leading one
        let e = 113;
        while ((mant & 0x400) === 0) { mant <<= 1; e--; }
        dst[i] = sign | (e << 23) | ((mant & 0x3ff) << 13);
      }
    }
  }
  return dst;
}

/**
 * @typedef {{dtype: string, bytes: number, stored?: 'float16',
 *            parts: {shard: number, offset: number, bytes: number}[]}} WeightRecord
 */

/**
 * The parts of weight `w` that shard `index` holds: for each, `at`, the byte offset in the weight's device form
 * where it goes, `deviceBytes`, its size there, `data()`, its device-form bytes (a view of the shard, or a new array
 * for a float16-stored weight), and `copyTo(target)`, which writes them into `target`, a Uint8Array of
 * `deviceBytes` bytes (4-byte aligned), widening float16 straight into it.
 * @param {WeightRecord} w
 * @param {number} index  the shard's index
 * @param {ArrayBuffer} shard  its bytes
 */
export function partsInShard(w, index, shard) {
  const widen = w.stored === 'float16';
  /** @type {{at: number, deviceBytes: number, data: () => Uint8Array, copyTo: (target: Uint8Array) => void}[]} */
  const out = [];
  let at = 0;
  for (const part of w.parts) {
    const deviceBytes = widen ? part.bytes * 2 : part.bytes;
    if (part.shard === index && part.bytes > 0) {
      const stored = new Uint8Array(shard, part.offset, part.bytes);
      const copyTo = (/** @type {Uint8Array} */ target) => {
        if (!widen) {
          target.set(stored);
        } else {
          const n = part.bytes / 2;
          halfToFloat(new Uint16Array(shard, part.offset, n), new Uint32Array(target.buffer, target.byteOffset, n));
        }
      };
      const data = () => {
        if (!widen) return stored;
        const target = new Uint8Array(deviceBytes);
        copyTo(target);
        return target;
      };
      out.push({ at, deviceBytes, data, copyTo });
    }
    at += deviceBytes;
  }
  return out;
}
