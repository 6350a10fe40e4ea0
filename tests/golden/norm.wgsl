// webjit norm wg64
@group(0) @binding(0) var<storage, read> in0: array<f32>;
@group(0) @binding(1) var<storage, read> in1: array<f32>;
@group(0) @binding(2) var<storage, read> in2: array<f32>;
@group(0) @binding(3) var<storage, read_write> out0: array<f32>;

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
  if (row >= 3u) { return; }
  let base = row * 10u;
  var s = 0.0f;
  for (var l = lid; l < 10u; l += 64u) { s = s + in0[base + l]; }
  let mean = wg_sum(s, lid) / 10.0f;
  var q = 0.0f;
  for (var l = lid; l < 10u; l += 64u) { let d = in0[base + l] - mean; q = q + d * d; }
  let inv = inverseSqrt(wg_sum(q, lid) / 10.0f + 9.999999747378752e-06f);
  for (var l = lid; l < 10u; l += 64u) {
    var y = (in0[base + l] - mean) * inv;
    y = y * in1[l];
    y = y + in2[l];
    out0[base + l] = y;
  }

}
