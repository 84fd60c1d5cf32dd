{
  "variables": {
    # Directory of the BLAKE3 team's C sources (blake3.c, blake3_dispatch.c, the x86-64
    # assembly): set by scripts/build-native.mjs when Debian's librust-blake3-dev is
    # installed. Empty: Dits' own BLAKE3 (b3.c).
    "blake3_c%": ""
  },
  "targets": [
    {
      "target_name": "dits_chunker",
      "sources": ["chunker.c", "b3-tree.c"],
      "cflags": ["-O3", "-std=c11", "-Wall", "-Wextra"],
      "cflags!": ["-O2"],
      "xcode_settings": { "OTHER_CFLAGS": ["-O3", "-std=c11"] },
      "msvs_settings": { "VCCLCompilerTool": { "Optimization": 2 } },
      "conditions": [
        ["blake3_c==''", { "sources": ["b3.c"] }, {
          "sources": [
            "b3-official.c",
            "<(blake3_c)/blake3.c",
            "<(blake3_c)/blake3_dispatch.c",
            "<(blake3_c)/blake3_portable.c",
            "<(blake3_c)/blake3_sse2_x86-64_unix.S",
            "<(blake3_c)/blake3_sse41_x86-64_unix.S",
            "<(blake3_c)/blake3_avx2_x86-64_unix.S",
            "<(blake3_c)/blake3_avx512_x86-64_unix.S"
          ],
          "include_dirs": ["<(blake3_c)"]
        }]
      ]
    }
  ]
}
