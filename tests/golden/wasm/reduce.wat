  (func $k00_reduce (param $t i32) (param $nt i32)
    (local $u i32) (local $u1 i32) (local $v i32) (local $r i32) (local $b i32) (local $p i32) (local $acc v128)
    (local $res f32) (local $o0 i32) (local $q0 i32)
    (local.set $u (i32.wrap_i64 (i64.div_u (i64.mul (i64.extend_i32_u (local.get $t)) (i64.const 3)) (i64.extend_i32_u (local.get $nt)))))
    (local.set $u1 (i32.wrap_i64 (i64.div_u (i64.mul (i64.extend_i32_u (i32.add (local.get $t) (i32.const 1))) (i64.const 3)) (i64.extend_i32_u (local.get $nt)))))

    (block $units_done (loop $units
      (br_if $units_done (i32.ge_u (local.get $u) (local.get $u1)))
      (local.set $o0 (local.get $u))

      (local.set $b (i32.add (i32.const 64) (i32.mul (local.get $o0) (i32.const 16))))
      (local.set $acc (v128.const f32x4 0.0 0.0 0.0 0.0))
      (local.set $r (i32.const 0))
      (loop $red
      (local.set $q0 (local.get $r))

        (local.set $p (i32.add (local.get $b) (i32.add (i32.const 0) (i32.mul (local.get $q0) (i32.const 48)))))
      (local.set $v (i32.const 1))
      (block $wdi (loop $wli
        (br_if $wdi (i32.eqz (local.get $v)))
        (local.set $acc (f32x4.add (local.get $acc) (v128.load  (local.get $p))))

        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (local.set $v (i32.sub (local.get $v) (i32.const 1)))
        (br $wli)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br_if $red (i32.lt_u (local.get $r) (i32.const 2))))
      (local.set $res (call $hsum (local.get $acc)))
      (local.set $res (f32.div (local.get $res) (f32.const 8.0)))
      (f32.store (i32.add (i32.const 192) (i32.shl (local.get $u) (i32.const 2))) (local.get $res))

      (local.set $u (i32.add (local.get $u) (i32.const 1)))
      (br $units)))
  )
