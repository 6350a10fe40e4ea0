// webjit reduce per1_wg64
@group(0) @binding(0) var<storage, read> in0: array<f32>;
@group(0) @binding(1) var<storage, read_write> out0: array<f32>;


@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let first = (wid.y * nwg.x + wid.x) * 64u + lid;
  for (var r = 0u; r < 1u; r++) {
    let i = first + r * 64u;
    if (i < 3u) {
  let o0 = i / 1u;

      let base = (0u + o0 * 4u);
      var acc: f32 = 0.0f;
      for (var r = 0u; r < 8u; r++) {
  let q0 = r / 4u;
  let q1 = (r / 1u) % 4u;

        let x = in0[base + (0u + q0 * 12u + q1 * 1u)];
        acc = acc + x;
      }
      out0[i] = acc / f32(8u);

    }
  }
}
