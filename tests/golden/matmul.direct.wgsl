// webjit matmul BM32_BN32_S0_TK1_TM2_TN2
@group(0) @binding(0) var<storage, read> in0: array<f32>;
@group(0) @binding(1) var<storage, read> in1: array<f32>;
@group(0) @binding(2) var<storage, read> in2: array<f32>;
@group(0) @binding(3) var<storage, read_write> out0: array<f32>;

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


fn epilogue(acc: f32, c0: u32, c1: u32, c2: u32) -> f32 {
  let x0 = in2[(0u + c2 * 1u)];
  let t0: f32 = (acc + x0);
  let t1: f32 = (0.5f * t0 * (1.0f + erf_(t0 * 0.70710678118654752f)));

  return t1;
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) lidx: u32) {
  let c0 = wid.z / 1u;

  let a0 = (0u + c0 * 112u);
  let b0 = (0u);
  let row0 = wid.y * 32u;
  let col0 = wid.x * 32u;
  var acc_0_0 = 0.0f;
  var acc_0_1 = 0.0f;
  var acc_1_0 = 0.0f;
  var acc_1_1 = 0.0f;
  let ra0 = a0 + min(row0 + lid.y + 0u, 6u) * 16u;
  let ra1 = a0 + min(row0 + lid.y + 16u, 6u) * 16u;
  let cb0 = b0 + min(col0 + lid.x + 0u, 11u) * 1u;
  let cb1 = b0 + min(col0 + lid.x + 16u, 11u) * 1u;
  for (var k = 0u; k < 16u; k++) {
    let a0 = in0[ra0 + k * 1u];
    let a1 = in0[ra1 + k * 1u];
    let b0 = in1[cb0 + k * 12u];
    let b1 = in1[cb1 + k * 12u];
    acc_0_0 = fma(a0, b0, acc_0_0);
    acc_0_1 = fma(a0, b1, acc_0_1);
    acc_1_0 = fma(a1, b0, acc_1_0);
    acc_1_1 = fma(a1, b1, acc_1_1);
  }
  let out_base = wid.z * 84u;
  let m0 = row0 + lid.y + 0u;
  let n0_0 = col0 + lid.x + 0u;
  if (m0 < 7u && n0_0 < 12u) {
    out0[out_base + m0 * 12u + n0_0] = epilogue(acc_0_0, c0, m0, n0_0);
  }
  let n0_1 = col0 + lid.x + 16u;
  if (m0 < 7u && n0_1 < 12u) {
    out0[out_base + m0 * 12u + n0_1] = epilogue(acc_0_1, c0, m0, n0_1);
  }
  let m1 = row0 + lid.y + 16u;
  let n1_0 = col0 + lid.x + 0u;
  if (m1 < 7u && n1_0 < 12u) {
    out0[out_base + m1 * 12u + n1_0] = epilogue(acc_1_0, c0, m1, n1_0);
  }
  let n1_1 = col0 + lid.x + 16u;
  if (m1 < 7u && n1_1 < 12u) {
    out0[out_base + m1 * 12u + n1_1] = epilogue(acc_1_1, c0, m1, n1_1);
  }
}
