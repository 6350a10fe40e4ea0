// webjit attention BK16_BQ32
@group(0) @binding(0) var<storage, read> in0: array<f32>;
@group(0) @binding(1) var<storage, read> in1: array<f32>;
@group(0) @binding(2) var<storage, read> in2: array<f32>;
@group(0) @binding(3) var<storage, read> in3: array<f32>;
@group(0) @binding(4) var<storage, read_write> out0: array<f32>;

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

var<workgroup> Ks: array<vec4<f32>, 32>;   // [j][d / 4]
var<workgroup> Vs: array<vec4<f32>, 32>;  // [j][e / 4]

fn score(acc: f32, c0: u32, c1: u32, c2: u32, c3: u32) -> f32 {
  let x0 = in3[(0u + c3 * 1u)];
  let t0: f32 = (acc * 0.3499999940395355f);
  let t1: f32 = (t0 + x0);

  return t1;
}

@compute @workgroup_size(32)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lidx: u32) {
  let c0 = wid.y / 2u;
  let c1 = (wid.y / 1u) % 2u;

  let q0 = (0u + c1 * 40u);
  let k0 = (0u + c1 * 40u);
  let v0 = (0u + c1 * 40u);
  let m = wid.x * 32u + lidx;
  let valid = m < 5u;
  var q: array<vec4<f32>, 2>;
  var o: array<vec4<f32>, 2>;
  if (valid) {
    let qr = q0 + m * 8u;
    for (var d = 0u; d < 2u; d++) {
      q[d] = vec4<f32>(in0[qr + (4u * d) * 1u], in0[qr + (4u * d + 1u) * 1u],
                       in0[qr + (4u * d + 2u) * 1u], in0[qr + (4u * d + 3u) * 1u]);
    }
  }
  var mx = -3.4028234663852886e+38f;
  var l = 0.0f;
  for (var n0 = 0u; n0 < 5u; n0 += 16u) {
    for (var e = lidx; e < 128u; e += 32u) {
      let j = e / 8u; let d = e % 8u;
      var x = 0.0f;
      if (n0 + j < 5u) {
        x = in1[k0 + d * 1u + (n0 + j) * 8u];
      }
      Ks[j * 2u + d / 4u][d % 4u] = x;
    }
    for (var e = lidx; e < 128u; e += 32u) {
      let j = e / 8u; let d = e % 8u;
      var x = 0.0f;
      if (n0 + j < 5u) {
        x = in2[v0 + (n0 + j) * 8u + d * 1u];
      }
      Vs[j * 2u + d / 4u][d % 4u] = x;
    }
    workgroupBarrier();
    if (valid) {
      let jn = min(16u, 5u - n0);
      for (var j = 0u; j < jn; j++) {
        var s4 = vec4<f32>(0.0f);
        for (var d = 0u; d < 2u; d++) {
          s4 = fma(q[d], Ks[j * 2u + d], s4);
        }
        var s = s4.x + s4.y + s4.z + s4.w;
        s = score(s, c0, c1, m, n0 + j);
        if (s > mx) {
          let corr = exp(mx - s);
          l = l * corr;
          for (var d = 0u; d < 2u; d++) { o[d] = o[d] * corr; }
          mx = s;
        }
        let p = exp(s - mx);
        l = l + p;
        for (var d = 0u; d < 2u; d++) {
          o[d] = fma(vec4<f32>(p), Vs[j * 2u + d], o[d]);
        }
      }
    }
    workgroupBarrier();
  }
  if (valid) {
    let out_row = (0u + c0 * 80u + c1 * 40u) + m * 8u;
    let inv = 1.0f / l;
    for (var d = 0u; d < 2u; d++) {
      let y = o[d] * inv;
      for (var e = 0u; e < 4u; e++) {
        out0[out_row + (4u * d + e) * 1u] = y[e];
      }
    }
  }
}
