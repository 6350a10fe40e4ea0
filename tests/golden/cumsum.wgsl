// webjit cumsum per1_wg64
@group(0) @binding(0) var<storage, read> in0: array<f32>;
@group(0) @binding(1) var<storage, read_write> out0: array<f32>;


@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let first = (wid.y * nwg.x + wid.x) * 64u + lid;
  for (var r = 0u; r < 1u; r++) {
    let i = first + r * 64u;
    if (i < 15u) {
      let n = i % 1u;
      let a = (i / 1u) % 5u;
      let base = (i / 5u) * 5u + n;
      let lo = 0u; let hi = a;
      var acc: f32 = f32(0);
      for (var k = lo; k < hi; k++) { acc = acc + in0[base + k * 1u]; }
      out0[i] = acc;

    }
  }
}
