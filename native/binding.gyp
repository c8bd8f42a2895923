{
  "targets": [{
    "target_name": "medpipe_native",
    "sources": ["medpipe.cc"],
    "cflags_cc": ["-O3", "-ffp-contract=off", "-std=c++17", "-pthread"],
    "cflags_cc!": ["-fno-exceptions"],
    "ldflags": ["-pthread"]
  }]
}
