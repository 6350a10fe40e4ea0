// webjit elementwise per1_wg64
@group(0) @binding(0) var<storage, read> in0: array<f32>;
@group(0) @binding(1) var<storage, read> in1: array<f32>;
@group(0) @binding(2) var<storage, read_write> out0: array<f32>;

// A float from its bits, for inf and NaN: WGSL has no literal for them, and a constant bitcast to them is an
// error in some compilers (a call to a function is not evaluated at shader-creation time).
fn f32_bits(b: u32) -> f32 {
  return bitcast<f32>(b);
}
// erf with |error| < 1.5e-7 (Abramowitz & Stegun 7.1.26)
fn erf_(x: f32) -> f32 {
  let a = abs(x);
  let t = 1.0f / (1.0f + 0.3275911f * a);
  let y = 1.0f - (((((1.061405429f * t - 1.453152027f) * t) + 1.421413741f) * t - 0.284496736f) * t + 0.254829592f) * t * exp(-a * a);
  return select(-y, y, x >= 0.0f);
}
// ONNX Pow: a negative base with an integral exponent is defined, with a fractional one it is NaN
fn pow_(a: f32, b: f32) -> f32 {
  if (a < 0.0f && b != trunc(b)) { return f32_bits(0x7fc00000u); }
  let r = pow(abs(a), b);
  let odd = (b == trunc(b)) && (abs(b % 2.0f) == 1.0f);
  return select(r, -r, a < 0.0f && odd);
}
// integer power by squaring (exact, wrapping like int arithmetic); negative exponents truncate to 0 unless |a| = 1
fn ipow_(a: i32, b: i32) -> i32 {
  if (b < 0) { return select(0i, select(1i, select(1i, -1i, (b & 1) == 1), a == -1i), a == 1i || a == -1i); }
  var r = 1i;
  var x = a;
  var e = b;
  while (e > 0) {
    if ((e & 1) == 1) { r = r * x; }
    x = x * x;
    e = e >> 1u;
  }
  return r;
}
fn softplus_(x: f32) -> f32 {
  return select(log(1.0f + exp(x)), x, x > 20.0f);
}

fn compute(i: u32) -> f32 {
  let c0 = i / 12u;
  let c1 = (i / 4u) % 3u;
  let c2 = (i / 1u) % 4u;

  let x0 = in0[(0u + c2 * 1u)];
  let x1 = in1[(0u + c0 * 12u + c1 * 4u + c2 * 1u)];
  let t0: f32 = tanh(clamp(x1, -15.0f, 15.0f));
  let t1: bool = (x1 > x0);
  let t2: f32 = select(x0, t0, t1);

  return t2;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let first = (wid.y * nwg.x + wid.x) * 64u + lid;
  for (var r = 0u; r < 1u; r++) {
    let i = first + r * 64u;
    if (i < 24u) {
      out0[i] = compute(i);

    }
  }
}
