// Tensors as onnxruntime-web has them (`new Tensor(type, data, dims)`), and how each type is stored on the device.

/** @typedef {'float32' | 'int64' | 'int32' | 'bool'} TensorType */
/** @typedef {Float32Array | BigInt64Array | Int32Array | Uint8Array} TensorData */

/** The typed array that holds each tensor type (bool as one byte per element, like onnxruntime-web). */
export const TYPED_ARRAYS = {
  float32: Float32Array,
  int64: BigInt64Array,
  int32: Int32Array,
  bool: Uint8Array,
};

/** How kernels store each type: int64 narrows to int32, bool widens to uint32. */
export const DEVICE_TYPES = { float32: 'float32', int64: 'int32', int32: 'int32', bool: 'uint32' };

const DEVICE_ARRAYS = { float32: Float32Array, int32: Int32Array, uint32: Uint32Array };

export class Tensor {
  /**
   * @param {TensorType} type
   * @param {TensorData | ArrayLike<number | bigint | boolean>} data  a typed array of the type, or a plain array
   * @param {readonly number[]} [dims]  defaults to [data.length]
   */
  constructor(type, data, dims) {
    const Typed = TYPED_ARRAYS[type];
    if (!Typed) {
      throw new TypeError(`unsupported tensor type '${type}'; webjit handles ${Object.keys(TYPED_ARRAYS).join(', ')}`);
    }
    if (Array.isArray(data)) {
      data = type === 'int64' ? BigInt64Array.from(data, (v) => BigInt(v))
        : type === 'bool' ? Uint8Array.from(data, (v) => (v ? 1 : 0))
          : type === 'int32' ? Int32Array.from(data, Number) : Float32Array.from(data, Number);
    } else if (!(data instanceof Typed)) {
      const got = data && data.constructor ? data.constructor.name : typeof data;
      throw new TypeError(`a tensor of type ${type} holds a ${Typed.name} (or a plain array), got ${got}`);
    }
    dims = dims === undefined ? [data.length] : Array.from(dims);
    if (!dims.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new TypeError(`tensor dims must be non-negative integers, got [${dims}]`);
    }
    const size = dims.reduce((a, b) => a * b, 1);
    if (size !== data.length) {
      throw new RangeError(`tensor dims [${dims}] hold ${size} elements, but the data has ${data.length}`);
    }
    /** @type {TensorType} */ this.type = type;
    /** @type {TensorData} */ this.data = /** @type {TensorData} */ (data);
    /** @type {readonly number[]} */ this.dims = Object.freeze(dims);
    /** @type {number} */ this.size = size;
  }
}

/**
 * A tensor's data as the kernels read it.
 * @param {string} name  for messages
 * @param {Tensor} tensor
 * @returns {Float32Array | Int32Array | Uint32Array}
 */
export function toDevice(name, tensor) {
  const { type, data } = tensor;
  if (type === 'float32' || type === 'int32') return /** @type {Float32Array | Int32Array} */ (data);
  if (type === 'bool') return Uint32Array.from(/** @type {Uint8Array} */ (data), (v) => (v ? 1 : 0));
  const out = new Int32Array(data.length);
  const wide = /** @type {BigInt64Array} */ (data);
  for (let i = 0; i < wide.length; i++) {
    const v = wide[i];
    if (v < -2147483648n || v > 2147483647n) {
      throw new RangeError(`input '${name}': value ${v} at index ${i} is outside the int32 range the kernels use`);
    }
    out[i] = Number(v);
  }
  return out;
}

/**
 * A tensor from the bytes a kernel wrote (device form) back in its ONNX type.
 * @param {TensorType} type
 * @param {'float32' | 'int32' | 'uint32'} deviceType
 * @param {ArrayBuffer} bytes  at least size * 4 bytes
 * @param {number[]} dims
 */
export function fromDevice(type, deviceType, bytes, dims) {
  const size = dims.reduce((a, b) => a * b, 1);
  const raw = new DEVICE_ARRAYS[deviceType](bytes, 0, size);
  if (type === 'int64') return new Tensor(type, BigInt64Array.from(raw, (v) => BigInt(v)), dims);
  if (type === 'bool') return new Tensor(type, Uint8Array.from(raw, (v) => (v ? 1 : 0)), dims);
  return new Tensor(type, new TYPED_ARRAYS[type](raw), dims);
}

/**
 * A tensor from raw little-endian bytes in its own type (reference files, constant outputs).
 * @param {TensorType} type
 * @param {ArrayBuffer} bytes
 * @param {number[]} dims
 */
export function fromRaw(type, bytes, dims) {
  return new Tensor(type, new TYPED_ARRAYS[type](bytes.slice(0)), dims);
}
