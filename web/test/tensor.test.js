import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, fromDevice, fromRaw, toDevice } from '../tensor.js';

test('a tensor holds its type, data, frozen dims and size', () => {
  const t = new Tensor('float32', new Float32Array(6), [2, 3]);
  assert.equal(t.type, 'float32');
  assert.equal(t.size, 6);
  assert.deepEqual(t.dims, [2, 3]);
  assert.ok(Object.isFrozen(t.dims));
});

test('plain arrays are converted to the typed array of the tensor type', () => {
  assert.deepEqual(new Tensor('int64', [1, 2, 3]).data, BigInt64Array.from([1n, 2n, 3n]));
  assert.deepEqual(new Tensor('bool', [true, false]).data, Uint8Array.from([1, 0]));
  assert.deepEqual(new Tensor('float32', [0.5]).data, Float32Array.from([0.5]));
});

test('data of the wrong typed array, dims that do not match and unknown types are refused', () => {
  assert.throws(() => new Tensor('int64', new Int32Array(4), [1, 4]), /a tensor of type int64 holds a BigInt64Array \(or a plain array\), got Int32Array/);
  assert.throws(() => new Tensor('float32', new Float32Array(4), [1, 5]), /tensor dims \[1,5\] hold 5 elements, but the data has 4/);
  assert.throws(() => new Tensor('float16', [1]), /unsupported tensor type 'float16'/);
  assert.throws(() => new Tensor('float32', [1], [1.5]), /non-negative integers/);
});

test('int64 inputs go to the device as int32, and values outside int32 are refused', () => {
  const t = new Tensor('int64', BigInt64Array.from([0n, -5n, 2147483647n]));
  assert.deepEqual(toDevice('ids', t), Int32Array.from([0, -5, 2147483647]));
  assert.throws(() => toDevice('ids', new Tensor('int64', [2 ** 31])), /input 'ids': value 2147483648 at index 0 is outside the int32 range/);
});

test('bool inputs widen to uint32 on the device', () => {
  assert.deepEqual(toDevice('m', new Tensor('bool', [true, false, true])), Uint32Array.from([1, 0, 1]));
});

test('device results come back in their ONNX type', () => {
  const words = Int32Array.from([7, -1, 0, 0]).buffer;
  assert.deepEqual(fromDevice('int64', 'int32', words, [2]).data, BigInt64Array.from([7n, -1n]));
  assert.deepEqual(fromDevice('bool', 'uint32', Uint32Array.from([0, 3]).buffer, [2]).data, Uint8Array.from([0, 1]));
  const f = fromDevice('float32', 'float32', Float32Array.from([1.5, 2.5, 9]).buffer, [1, 2]);
  assert.deepEqual([...f.data], [1.5, 2.5]);
  assert.deepEqual(f.dims, [1, 2]);
});

test('raw little-endian files read back in their own type', () => {
  const t = fromRaw('int64', BigInt64Array.from([3n, 4n]).buffer, [1, 2]);
  assert.deepEqual(t.data, BigInt64Array.from([3n, 4n]));
});
