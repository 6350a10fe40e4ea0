// Compute pipelines for kernel variants, made with createComputePipelineAsync, many at once, each WGSL file
// compiled once. Bind group layouts are explicit, exactly as the native executor makes them: inputs bind as
// read-only storage, outputs as storage; kernels with equal binding signatures share one layout, so a kernel's bind
// group works with every one of its variants.

/** @typedef {import('../manifest.js').Bundle} Bundle */

export class Pipelines {
  /**
   * @param {GPUDevice} device
   * @param {Bundle} bundle
   */
  constructor(device, bundle) {
    this.device = device;
    this.bundle = bundle;
    /** @type {Map<string, GPUBindGroupLayout>} */
    this._layouts = new Map();
    /** @type {Map<string, Promise<GPUComputePipeline>>} */
    this._pipelines = new Map();
  }

  /**
   * The bind group layout of a signature such as 'rrw' (see plan.signature).
   * @param {string} sig
   */
  layout(sig) {
    let layout = this._layouts.get(sig);
    if (!layout) {
      layout = this.device.createBindGroupLayout({
        label: `webjit ${sig}`,
        entries: [...sig].map((c, binding) => ({
          binding,
          visibility: GPUShaderStage.COMPUTE,
          buffer: { type: /** @type {GPUBufferBindingType} */ (c === 'r' ? 'read-only-storage' : 'storage') },
        })),
      });
      this._layouts.set(sig, layout);
    }
    return layout;
  }

  /**
   * The pipeline of one WGSL file, compiled once.
   * @param {string} file  bundle path of the WGSL source
   * @param {string} sig  binding signature
   * @param {string} label  kernel and variant, for messages
   * @returns {Promise<GPUComputePipeline>}
   */
  get(file, sig, label) {
    const key = `${sig} ${file}`;
    let pipeline = this._pipelines.get(key);
    if (!pipeline) {
      pipeline = this._create(file, sig, label);
      this._pipelines.set(key, pipeline);
    }
    return pipeline;
  }

  /**
   * Compile many pipelines at once.
   * @param {{file: string, sig: string, label: string}[]} wanted
   * @param {(done: number, total: number) => void} [onEach]
   * @returns {Promise<GPUComputePipeline[]>}
   */
  async all(wanted, onEach) {
    let done = 0;
    return Promise.all(wanted.map(async (w) => {
      const p = await this.get(w.file, w.sig, w.label);
      if (onEach) onEach(++done, wanted.length);
      return p;
    }));
  }

  /**
   * @param {string} file
   * @param {string} sig
   * @param {string} label
   */
  async _create(file, sig, label) {
    const code = await this.bundle.text(file);
    const module = this.device.createShaderModule({ code, label });
    const layout = this.device.createPipelineLayout({ bindGroupLayouts: [this.layout(sig)], label });
    try {
      return await this.device.createComputePipelineAsync({ layout, compute: { module, entryPoint: 'main' }, label });
    } catch (e) {
      const info = await module.getCompilationInfo();
      const messages = info.messages.map((m) => `  ${m.type} at line ${m.lineNum}:${m.linePos}: ${m.message}`);
      throw new Error(`kernel ${label} (${file}) does not compile: ${/** @type {Error} */ (e).message}` +
        (messages.length ? `\n${messages.join('\n')}` : ''));
    }
  }
}
