{
  # Dits' read-only FUSE binding (dits-fuse.c), built apart from the chunker so that a
  # machine without libfuse3's headers still gets the chunker (scripts/build-native.mjs):
  # read-only mounts then fall back to fuse-native.
  "targets": [
    {
      "target_name": "dits_fuse",
      "sources": ["dits-fuse.c"],
      "cflags": ["-O2", "-std=gnu11", "-Wall", "-Wextra", "<!@(pkg-config --cflags fuse3)"],
      "libraries": ["<!@(pkg-config --libs fuse3)"]
    }
  ]
}
