  (func $k00_gather (param $t i32) (param $nt i32)
    (local $u i32) (local $u1 i32) (local $v i32) (local $o i32) (local $k i32) (local $src i32) (local $dst i32)
    (local.set $u (i32.wrap_i64 (i64.div_u (i64.mul (i64.extend_i32_u (local.get $t)) (i64.const 6)) (i64.extend_i32_u (local.get $nt)))))
    (local.set $u1 (i32.wrap_i64 (i64.div_u (i64.mul (i64.extend_i32_u (i32.add (local.get $t) (i32.const 1))) (i64.const 6)) (i64.extend_i32_u (local.get $nt)))))

    (block $units_done (loop $units
      (br_if $units_done (i32.ge_u (local.get $u) (local.get $u1)))
      (local.set $o (i32.div_u (local.get $u) (i32.const 6)))
      (local.set $k (i32.load (i32.add (i32.const 1664) (i32.shl (i32.sub (local.get $u) (i32.mul (local.get $o) (i32.const 6))) (i32.const 2)))))
      (if (i32.lt_s (local.get $k) (i32.const 0)) (then (local.set $k (i32.add (local.get $k) (i32.const 50)))))
      (local.set $k (select (select (local.get $k) (i32.const 0) (i32.gt_s (local.get $k) (i32.const 0))) (i32.const 49) (i32.lt_s (select (local.get $k) (i32.const 0) (i32.gt_s (local.get $k) (i32.const 0))) (i32.const 49))))
      (local.set $src (i32.add (i32.add (i32.const 64) (i32.mul (local.get $o) (i32.const 1600))) (i32.mul (i32.sub (local.get $k) (i32.const 0)) (i32.const 32))))
      (local.set $dst (i32.add (i32.const 1728) (i32.mul (local.get $u) (i32.const 32))))
      (local.set $v (i32.const 2))
      (block $wdc (loop $wlc
        (br_if $wdc (i32.eqz (local.get $v)))
        (v128.store (local.get $dst) (v128.load (local.get $src)))

        (local.set $src (i32.add (local.get $src) (i32.const 16)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
        (local.set $v (i32.sub (local.get $v) (i32.const 1)))
        (br $wlc)))

      (local.set $u (i32.add (local.get $u) (i32.const 1)))
      (br $units)))
  )
