  (func $k00_gather_elements (param $t i32) (param $nt i32)
    (local $u i32) (local $u1 i32) (local $k i32) (local $c0 i32) (local $c1 i32)
    (local.set $u (i32.wrap_i64 (i64.div_u (i64.mul (i64.extend_i32_u (local.get $t)) (i64.const 6)) (i64.extend_i32_u (local.get $nt)))))
    (local.set $u1 (i32.wrap_i64 (i64.div_u (i64.mul (i64.extend_i32_u (i32.add (local.get $t) (i32.const 1))) (i64.const 6)) (i64.extend_i32_u (local.get $nt)))))

    (block $units_done (loop $units
      (br_if $units_done (i32.ge_u (local.get $u) (local.get $u1)))
      (local.set $c0 (i32.div_u (local.get $u) (i32.const 2)))
      (local.set $c1 (i32.rem_u (local.get $u) (i32.const 2)))

      (local.set $k (i32.load (i32.add (i32.const 128) (i32.shl (local.get $u) (i32.const 2)))))
      (if (i32.lt_s (local.get $k) (i32.const 0)) (then (local.set $k (i32.add (local.get $k) (i32.const 4)))))
      (local.set $c1 (select (select (local.get $k) (i32.const 0) (i32.gt_s (local.get $k) (i32.const 0))) (i32.const 3) (i32.lt_s (select (local.get $k) (i32.const 0) (i32.gt_s (local.get $k) (i32.const 0))) (i32.const 3))))
      (i32.store (i32.add (i32.const 192) (i32.shl (local.get $u) (i32.const 2))) (i32.load (i32.add (i32.add (i32.const 64) (i32.mul (local.get $c0) (i32.const 16))) (i32.mul (local.get $c1) (i32.const 4)))))

      (local.set $u (i32.add (local.get $u) (i32.const 1)))
      (br $units)))
  )
