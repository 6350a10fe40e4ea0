// Type-checks against the package's generated types (tests run `tsc --noEmit` on it with the npm tarball
// installed). The same calls run in a page: see embed.html.
import { InferenceSession, Tensor } from 'webjit';

export async function lastHiddenState(bundleUrl: string, ids: number[]): Promise<{ dims: readonly number[]; data: Float32Array }> {
  const session = await InferenceSession.create(bundleUrl, {
    executionProviders: ['webgpu', 'wasm'],
    tuning: { budgetMs: 2000 },
    onProgress: (e) => console.log(e.phase, e.done ?? '', e.total ?? ''),
  });
  const feeds = {
    input_ids: new Tensor('int64', BigInt64Array.from(ids, BigInt), [1, ids.length]),
    attention_mask: new Tensor('int64', new BigInt64Array(ids.length).fill(1n), [1, ids.length]),
  };
  const out = await session.run(feeds);
  const y = out.last_hidden_state;
  if (y.type !== 'float32') throw new Error(`expected float32, got ${y.type}`);
  console.log(`ran on ${session.executionProvider}`);
  return { dims: y.dims, data: y.data as Float32Array };
}
