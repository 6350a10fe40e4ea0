// webjit's browser runtime: run a webjit bundle (`webjit build`) on WebGPU, with onnxruntime-web's API shape.
//
//   import * as webjit from './web/webjit.js';
//   const session = await webjit.InferenceSession.create('bundle/', {tuning: {budgetMs: 2000}});
//   const out = await session.run({input_ids: new webjit.Tensor('int64', ids, [1, 128])});
//   const extractor = await webjit.pipeline('feature-extraction', 'bundle/');   // a bundle built from a hub folder

export { InferenceSession } from './session.js';
export { Tensor } from './tensor.js';
export { loadReference } from './reference.js';
export { IntegrityError, ManifestError } from './manifest.js';
export { compileInBrowser } from './compiler.js';
export { Detokenizer, TextStreamer } from './text.js';
export { pipeline } from './pipeline.js';
export { WordPieceTokenizer } from './tokenizer.js';
export { ModelTokenizer } from './bpe.js';
