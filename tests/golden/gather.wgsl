// webjit gather per1_wg64
@group(0) @binding(0) var<storage, read> in0: array<f32>;
@group(0) @binding(1) var<storage, read> in1: array<i32>;
@group(0) @binding(2) var<storage, read_write> out0: array<f32>;


@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let first = (wid.y * nwg.x + wid.x) * 64u + lid;
  for (var r = 0u; r < 1u; r++) {
    let i = first + r * 64u;
    if (i < 48u) {
      let n = i % 8u;
      let j = (i / 8u) % 6u;
      let o = i / 48u;
      var k = in1[j];
      if (k < 0i) { k = k + 50i; }
      let row = u32(clamp(k, 0i, 49i));
if (row < 50u) { out0[i] = in0[(o * 50u + row - 0u) * 8u + n]; }

    }
  }
}
