// A test manifest with load-time kernels, made from manifest.fixture.json (a helper module: it holds no tests).

/**
 * The fixture with a load-time kernel in front: it writes loaded buffer 0 from the weight, which the matmul then
 * reads in place of the weight.
 * @param {any} m
 */
export function withLoadKernel(m) {
  const scale = structuredClone(m.kernels[0]);
  scale.name = 'k00_elementwise';
  scale.bindings = [{ buffer: 'weight', index: 0, access: 'read-only' }, { buffer: 'loaded', index: 0, access: 'read-write' }];
  m.kernels.unshift(scale);
  m.kernels[2].bindings[1] = { buffer: 'loaded', index: 0, access: 'read-only' };
  m.loaded = [256];
  m.load = 1;
  return m;
}
