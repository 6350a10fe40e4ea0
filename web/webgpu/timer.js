// The WebGPU provider's clock for the tuner (../tuner.js): compute passes timed with timestamp queries when the
// device has them, else with the wall clock around onSubmittedWorkDone.

/**
 * Times compute passes on the device: with timestamp queries when it has them, else with the wall clock around
 * onSubmittedWorkDone (which then includes the submit).
 */
export class PassTimer {
  /**
   * @param {GPUDevice} device
   * @param {boolean} timestamps
   * @param {number} [maxPasses]
   */
  constructor(device, timestamps, maxPasses = 16) {
    this.device = device;
    this.kind = timestamps ? 'timestamp-query' : 'wall-clock';
    this.maxPasses = maxPasses;
    if (timestamps) {
      this._querySet = device.createQuerySet({ type: 'timestamp', count: 2 * maxPasses });
      this._resolve = device.createBuffer({ size: 16 * maxPasses, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
      this._read = device.createBuffer({ size: 16 * maxPasses, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    }
  }

  /**
   * Milliseconds per dispatch in each of `passes` passes of `perPass` dispatches.
   * @param {(pass: GPUComputePassEncoder) => void} dispatch  records one dispatch
   * @param {number} passes
   * @param {number} perPass
   * @returns {Promise<number[]>}
   */
  async time(dispatch, passes, perPass) {
    passes = Math.min(passes, this.maxPasses);
    const record = (/** @type {GPUCommandEncoder} */ enc, /** @type {number} */ p) => {
      const pass = enc.beginComputePass(this._querySet ? {
        timestampWrites: { querySet: this._querySet, beginningOfPassWriteIndex: 2 * p, endOfPassWriteIndex: 2 * p + 1 },
      } : {});
      for (let j = 0; j < perPass; j++) dispatch(pass);
      pass.end();
    };
    const queue = this.device.queue;
    if (!this._querySet) {
      const out = [];
      for (let p = 0; p < passes; p++) {
        const enc = this.device.createCommandEncoder();
        record(enc, p);
        const t = performance.now();
        queue.submit([enc.finish()]);
        await queue.onSubmittedWorkDone();
        out.push((performance.now() - t) / perPass);
      }
      return out;
    }
    const enc = this.device.createCommandEncoder();
    for (let p = 0; p < passes; p++) record(enc, p);
    enc.resolveQuerySet(this._querySet, 0, 2 * passes, /** @type {GPUBuffer} */ (this._resolve), 0);
    enc.copyBufferToBuffer(/** @type {GPUBuffer} */ (this._resolve), 0, /** @type {GPUBuffer} */ (this._read), 0, 16 * passes);
    queue.submit([enc.finish()]);
    const read = /** @type {GPUBuffer} */ (this._read);
    await read.mapAsync(GPUMapMode.READ, 0, 16 * passes);
    const ns = new BigUint64Array(read.getMappedRange(0, 16 * passes).slice(0));
    read.unmap();
    const out = [];
    for (let p = 0; p < passes; p++) out.push(Number(ns[2 * p + 1] - ns[2 * p]) / 1e6 / perPass);
    return out;
  }

  destroy() {
    if (this._querySet) this._querySet.destroy();
    if (this._resolve) this._resolve.destroy();
    if (this._read) this._read.destroy();
  }
}
