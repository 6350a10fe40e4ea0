// webjit scatter_nd per1_wg64
@group(0) @binding(0) var<storage, read> in0: array<i32>;
@group(0) @binding(1) var<storage, read> in1: array<f32>;
@group(0) @binding(2) var<storage, read_write> out0: array<f32>;


@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let first = (wid.y * nwg.x + wid.x) * 64u + lid;
  for (var r = 0u; r < 1u; r++) {
    let i = first + r * 64u;
    if (i < 15u) {
      let n = i;
      for (var j = 0u; j < 2u; j++) {
        var at = n;
        var k0 = in0[j * 1u + 0u];
        if (k0 < 0i) { k0 = k0 + 4i; }
        at = at + u32(clamp(k0, 0i, 3i)) * 15u;
        let v = in1[j * 15u + n];
        out0[at] = out0[at] + v;
      }

    }
  }
}
