  (func $k01_scatter_nd (param $t i32) (param $nt i32)
    (local $u i32) (local $u1 i32) (local $v i32) (local $k i32) (local $j i32) (local $src i32) (local $dst i32)
    (local $x v128)
    (local.set $u (i32.wrap_i64 (i64.div_u (i64.mul (i64.extend_i32_u (local.get $t)) (i64.const 1)) (i64.extend_i32_u (local.get $nt)))))
    (local.set $u1 (i32.wrap_i64 (i64.div_u (i64.mul (i64.extend_i32_u (i32.add (local.get $t) (i32.const 1))) (i64.const 1)) (i64.extend_i32_u (local.get $nt)))))

    (block $units_done (loop $units
      (br_if $units_done (i32.ge_u (local.get $u) (local.get $u1)))
      (local.set $j (i32.const 0))
      (loop $rows
      (local.set $dst (i32.const 512))
      (local.set $k (i32.load  (i32.add (i32.const 64) (i32.mul (local.get $j) (i32.const 4)))))
      (if (i32.lt_s (local.get $k) (i32.const 0)) (then (local.set $k (i32.add (local.get $k) (i32.const 4)))))
      (local.set $k (select (select (local.get $k) (i32.const 0) (i32.gt_s (local.get $k) (i32.const 0))) (i32.const 3) (i32.lt_s (select (local.get $k) (i32.const 0) (i32.gt_s (local.get $k) (i32.const 0))) (i32.const 3))))
      (local.set $dst (i32.add (local.get $dst) (i32.mul (local.get $k) (i32.const 60))))
      (local.set $src (i32.add (i32.const 384) (i32.mul (local.get $j) (i32.const 60))))
      (local.set $v (i32.const 3))
      (block $wdc (loop $wlc
        (br_if $wdc (i32.eqz (local.get $v)))
        (v128.store (local.get $dst) (f32x4.add (v128.load (local.get $dst)) (v128.load (local.get $src))))

        (local.set $src (i32.add (local.get $src) (i32.const 16)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
        (local.set $v (i32.sub (local.get $v) (i32.const 1)))
        (br $wlc)))
        (local.set $x (f32x4.add (v128.load32_lane offset=8 2 (local.get $dst) (v128.load32_lane offset=4 1 (local.get $dst) (v128.load32_lane  0 (local.get $dst) (v128.const i32x4 0 0 0 0)))) (v128.load32_lane offset=8 2 (local.get $src) (v128.load32_lane offset=4 1 (local.get $src) (v128.load32_lane  0 (local.get $src) (v128.const i32x4 0 0 0 0))))))
        (v128.store32_lane  0 (local.get $dst) (local.get $x)) (v128.store32_lane offset=4 1 (local.get $dst) (local.get $x)) (v128.store32_lane offset=8 2 (local.get $dst) (local.get $x))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br_if $rows (i32.lt_u (local.get $j) (i32.const 2)))
      )

      (local.set $u (i32.add (local.get $u) (i32.const 1)))
      (br $units)))
  )
