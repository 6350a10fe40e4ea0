// webjit gather_nd per1_wg64
@group(0) @binding(0) var<storage, read> in0: array<f32>;
@group(0) @binding(1) var<storage, read> in1: array<i32>;
@group(0) @binding(2) var<storage, read_write> out0: array<f32>;


@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let first = (wid.y * nwg.x + wid.x) * 64u + lid;
  for (var r = 0u; r < 1u; r++) {
    let i = first + r * 64u;
    if (i < 10u) {
      let n = i % 2u;
      let j = i / 2u;
      var at = n;
      var k0 = in1[j * 2u + 0u];
      if (k0 < 0i) { k0 = k0 + 3i; }
      at = at + u32(clamp(k0, 0i, 2i)) * 8u;
      var k1 = in1[j * 2u + 1u];
      if (k1 < 0i) { k1 = k1 + 4i; }
      at = at + u32(clamp(k1, 0i, 3i)) * 2u;
      out0[i] = in0[at];

    }
  }
}
