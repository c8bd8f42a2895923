{
  "targets": [{
    "target_name": "medpipe_native",
    "sources": [
      "src/addon.cc", "src/ops.cc", "src/pool.cc",
      "src/gemm.cc", "src/gemm_batched.cc", "src/ukr_avx512.cc", "src/ukr_avx512bf16.cc", "src/ukr_amx.cc", "src/ukr_avx2.cc", "src/ukr_c.cc", "src/pack_avx2.cc",
      "src/conv.cc", "src/conv_wgrad.cc", "src/elementwise.cc", "src/norms.cc", "src/pooling.cc", "src/optimizer.cc"
    ],
    "cflags_cc": ["-O3", "-ffp-contract=off", "-fno-math-errno", "-std=c++17", "-pthread"],
    "cflags_cc!": ["-fno-exceptions"],
    "ldflags": ["-pthread"]
  }]
}
