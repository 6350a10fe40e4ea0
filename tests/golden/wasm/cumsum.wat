  (func $k00_cumsum (param $t i32) (param $nt i32)
    (local $u i32) (local $u1 i32) (local $v i32) (local $g i32) (local $px i32) (local $po i32) (local $acc v128) (local $x v128)
    (local.set $u (i32.wrap_i64 (i64.div_u (i64.mul (i64.extend_i32_u (local.get $t)) (i64.const 3)) (i64.extend_i32_u (local.get $nt)))))
    (local.set $u1 (i32.wrap_i64 (i64.div_u (i64.mul (i64.extend_i32_u (i32.add (local.get $t) (i32.const 1))) (i64.const 3)) (i64.extend_i32_u (local.get $nt)))))

    (block $units_done (loop $units
      (br_if $units_done (i32.ge_u (local.get $u) (local.get $u1)))
      (local.set $g (i32.div_u (local.get $u) (i32.const 1)))
      (local.set $g (i32.sub (local.get $u) (i32.mul (local.get $g) (i32.const 1))))
      (local.set $px (i32.add (i32.mul (i32.div_u (local.get $u) (i32.const 1)) (i32.const 20)) (i32.add (i32.shl (local.get $g) (i32.const 4)) (i32.const 0))))
      (local.set $po (i32.add (local.get $px) (i32.const 128)))
      (local.set $px (i32.add (local.get $px) (i32.const 64)))
      (if (i32.eq (local.get $g) (i32.const 0)) (then
      (local.set $acc (v128.const i32x4 0 0 0 0))
      (local.set $v (i32.const 5))
      (block $wdt (loop $wlt
        (br_if $wdt (i32.eqz (local.get $v)))
        (local.set $x (v128.load32_lane  0 (local.get $px) (v128.const i32x4 0 0 0 0)))
        (v128.store32_lane  0 (local.get $po) (local.get $acc))
        (local.set $acc (f32x4.add (local.get $acc) (local.get $x)))

        (local.set $px (i32.add (local.get $px) (i32.const 4)))
        (local.set $po (i32.add (local.get $po) (i32.const 4)))
        (local.set $v (i32.sub (local.get $v) (i32.const 1)))
        (br $wlt)))

      ) (else
      (local.set $acc (v128.const i32x4 0 0 0 0))
      (local.set $v (i32.const 5))
      (block $wdf (loop $wlf
        (br_if $wdf (i32.eqz (local.get $v)))
        (local.set $x (v128.load  (local.get $px)))
        (v128.store  (local.get $po) (local.get $acc))
        (local.set $acc (f32x4.add (local.get $acc) (local.get $x)))

        (local.set $px (i32.add (local.get $px) (i32.const 4)))
        (local.set $po (i32.add (local.get $po) (i32.const 4)))
        (local.set $v (i32.sub (local.get $v) (i32.const 1)))
        (br $wlf)))

      ))

      (local.set $u (i32.add (local.get $u) (i32.const 1)))
      (br $units)))
  )
