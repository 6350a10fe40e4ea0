// webjit concat per1_wg64
@group(0) @binding(0) var<storage, read> in0: array<f32>;
@group(0) @binding(1) var<storage, read> in1: array<f32>;
@group(0) @binding(2) var<storage, read_write> out0: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let first = (wid.y * nwg.x + wid.x) * 64u + lid;
  for (var r = 0u; r < 1u; r++) {
    let i = first + r * 64u;
    if (i < 16u) {
  let c0 = i / 8u;
  let c1 = (i / 1u) % 8u;

if (c1 < 3u) { out0[i] = in0[(0u + c0 * 3u + c1 * 1u)]; }
else if (c1 < 8u) { out0[i] = in1[(4294967293u + c0 * 5u + c1 * 1u)]; }

    }
  }
}
