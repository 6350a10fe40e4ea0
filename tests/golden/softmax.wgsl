// webjit softmax wg64
@group(0) @binding(0) var<storage, read> in0: array<f32>;
@group(0) @binding(1) var<storage, read_write> out0: array<f32>;

var<workgroup> red: array<f32, 64>;
fn wg_sum(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s = s >> 1u) {
    if (lid < s) { red[lid] = red[lid] + red[lid + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}
fn wg_max(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s = s >> 1u) {
    if (lid < s) { red[lid] = max(red[lid], red[lid + s]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}


@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let row = wid.y * nwg.x + wid.x;
  if (row >= 6u) { return; }
  let base = (row / 3u) * 15u + row % 3u;
  var m = -3.4028234663852886e+38f;
  for (var l = lid; l < 5u; l += 64u) { m = max(m, in0[base + l * 3u]); }
  m = wg_max(m, lid);
  var s = 0.0f;
  for (var l = lid; l < 5u; l += 64u) { s = s + exp(in0[base + l * 3u] - m); }
  s = wg_sum(s, lid);
  let inv = 1.0f / s;
  for (var l = lid; l < 5u; l += 64u) {
    out0[base + l * 3u] = exp(in0[base + l * 3u] - m) * inv;
  }

}
