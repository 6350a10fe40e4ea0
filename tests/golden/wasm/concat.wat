  (func $k01_concat (param $t i32) (param $nt i32)
    (local $u i32) (local $u1 i32) (local $r i32) (local $j i32) (local $je i32) (local $jf i32) (local $o v128)
    (local $p0 i32) (local $p1 i32) (local $c0 i32)
    (local.set $u (i32.wrap_i64 (i64.div_u (i64.mul (i64.extend_i32_u (local.get $t)) (i64.const 2)) (i64.extend_i32_u (local.get $nt)))))
    (local.set $u1 (i32.wrap_i64 (i64.div_u (i64.mul (i64.extend_i32_u (i32.add (local.get $t) (i32.const 1))) (i64.const 2)) (i64.extend_i32_u (local.get $nt)))))

    (block $rows_done0 (loop $rows0
      (br_if $rows_done0 (i32.ge_u (local.get $u) (local.get $u1)))
      (local.set $r (i32.div_u (local.get $u) (i32.const 1)))
      (local.set $j (i32.sub (local.get $u) (i32.mul (local.get $r) (i32.const 1))))
      (local.set $je (select (i32.const 1) (i32.add (local.get $j) (i32.sub (local.get $u1) (local.get $u))) (i32.lt_s (i32.const 1) (i32.add (local.get $j) (i32.sub (local.get $u1) (local.get $u))))))
      (local.set $c0 (local.get $r))

      (local.set $p0 (i32.add (i32.add (i32.const 192) (i32.mul (local.get $c0) (i32.const 12))) (i32.mul (local.get $j) (i32.const 16))))
      (local.set $p1 (i32.add (i32.add (i32.const 448) (i32.mul (local.get $c0) (i32.const 32))) (i32.mul (local.get $j) (i32.const 16))))
      (local.set $jf (select (local.get $je) (i32.const 0) (i32.lt_s (local.get $je) (i32.const 0))))
      (block $vd0_4 (loop $vl0_4
        (br_if $vd0_4 (i32.gt_s (i32.add (local.get $j) (i32.const 4)) (local.get $jf)))
      (local.set $o (v128.load  (local.get $p0)))
      (v128.store  (local.get $p1) (local.get $o))

      (local.set $o (v128.load offset=16 (local.get $p0)))
      (v128.store offset=16 (local.get $p1) (local.get $o))

      (local.set $o (v128.load offset=32 (local.get $p0)))
      (v128.store offset=32 (local.get $p1) (local.get $o))

      (local.set $o (v128.load offset=48 (local.get $p0)))
      (v128.store offset=48 (local.get $p1) (local.get $o))

        (local.set $p0 (i32.add (local.get $p0) (i32.const 64)))
        (local.set $p1 (i32.add (local.get $p1) (i32.const 64)))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $vl0_4)))
      (block $vd0_1 (loop $vl0_1
        (br_if $vd0_1 (i32.gt_s (i32.add (local.get $j) (i32.const 1)) (local.get $jf)))
      (local.set $o (v128.load  (local.get $p0)))
      (v128.store  (local.get $p1) (local.get $o))

        (local.set $p0 (i32.add (local.get $p0) (i32.const 16)))
        (local.set $p1 (i32.add (local.get $p1) (i32.const 16)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $vl0_1)))
      (if (i32.eq (local.get $je) (i32.const 1)) (then
      (local.set $o (v128.load32_lane offset=8 2 (local.get $p0) (v128.load32_lane offset=4 1 (local.get $p0) (v128.load32_lane  0 (local.get $p0) (v128.const i32x4 0 0 0 0)))))
      (v128.store32_lane  0 (local.get $p1) (local.get $o)) (v128.store32_lane offset=4 1 (local.get $p1) (local.get $o)) (v128.store32_lane offset=8 2 (local.get $p1) (local.get $o))

      ))
      (local.set $u (i32.add (i32.mul (local.get $r) (i32.const 1)) (local.get $je)))
      (br $rows0)))
    (local.set $u (i32.wrap_i64 (i64.div_u (i64.mul (i64.extend_i32_u (local.get $t)) (i64.const 4)) (i64.extend_i32_u (local.get $nt)))))
    (local.set $u1 (i32.wrap_i64 (i64.div_u (i64.mul (i64.extend_i32_u (i32.add (local.get $t) (i32.const 1))) (i64.const 4)) (i64.extend_i32_u (local.get $nt)))))

    (block $rows_done1 (loop $rows1
      (br_if $rows_done1 (i32.ge_u (local.get $u) (local.get $u1)))
      (local.set $r (i32.div_u (local.get $u) (i32.const 2)))
      (local.set $j (i32.sub (local.get $u) (i32.mul (local.get $r) (i32.const 2))))
      (local.set $je (select (i32.const 2) (i32.add (local.get $j) (i32.sub (local.get $u1) (local.get $u))) (i32.lt_s (i32.const 2) (i32.add (local.get $j) (i32.sub (local.get $u1) (local.get $u))))))
      (local.set $c0 (local.get $r))

      (local.set $p0 (i32.add (i32.add (i32.const 128) (i32.mul (local.get $c0) (i32.const 20))) (i32.mul (local.get $j) (i32.const 16))))
      (local.set $p1 (i32.add (i32.add (i32.const 460) (i32.mul (local.get $c0) (i32.const 32))) (i32.mul (local.get $j) (i32.const 16))))
      (local.set $jf (select (local.get $je) (i32.const 1) (i32.lt_s (local.get $je) (i32.const 1))))
      (block $vd1_4 (loop $vl1_4
        (br_if $vd1_4 (i32.gt_s (i32.add (local.get $j) (i32.const 4)) (local.get $jf)))
      (local.set $o (v128.load  (local.get $p0)))
      (v128.store  (local.get $p1) (local.get $o))

      (local.set $o (v128.load offset=16 (local.get $p0)))
      (v128.store offset=16 (local.get $p1) (local.get $o))

      (local.set $o (v128.load offset=32 (local.get $p0)))
      (v128.store offset=32 (local.get $p1) (local.get $o))

      (local.set $o (v128.load offset=48 (local.get $p0)))
      (v128.store offset=48 (local.get $p1) (local.get $o))

        (local.set $p0 (i32.add (local.get $p0) (i32.const 64)))
        (local.set $p1 (i32.add (local.get $p1) (i32.const 64)))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $vl1_4)))
      (block $vd1_1 (loop $vl1_1
        (br_if $vd1_1 (i32.gt_s (i32.add (local.get $j) (i32.const 1)) (local.get $jf)))
      (local.set $o (v128.load  (local.get $p0)))
      (v128.store  (local.get $p1) (local.get $o))

        (local.set $p0 (i32.add (local.get $p0) (i32.const 16)))
        (local.set $p1 (i32.add (local.get $p1) (i32.const 16)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $vl1_1)))
      (if (i32.eq (local.get $je) (i32.const 2)) (then
      (local.set $o (v128.load32_lane  0 (local.get $p0) (v128.const i32x4 0 0 0 0)))
      (v128.store32_lane  0 (local.get $p1) (local.get $o))

      ))
      (local.set $u (i32.add (i32.mul (local.get $r) (i32.const 2)) (local.get $je)))
      (br $rows1)))
  )
