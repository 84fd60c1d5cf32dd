#!/usr/bin/env bash
# Installs everything Dits needs on Debian: system packages (as root, or through sudo),
# npm packages, the native chunker, the compiled CLI, and git-dits / git-remote-dits on PATH.
# Idempotent: run it again at any time.
set -euo pipefail
cd "$(dirname "$0")/.."

# librust-blake3-dev: the BLAKE3 C library's sources (with its x86-64 assembly), which the
# native addon is built with (scripts/build-native.mjs); without them it uses its own BLAKE3.
# libfuse2, fuse3: `git dits mount` (fuse-native's prebuilt addon links libfuse.so.2; the
# unmount runs fusermount, which fuse3 provides). libfuse3-dev, pkg-config: Dits' own FUSE
# binding for read-only mounts (native/fuse/); without them those use fuse-native too.
packages=(ffmpeg git-lfs restic rclone b3sum libfuse2 fuse3 libfuse3-dev pkg-config python3 make g++ librust-blake3-dev)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      echo "setup: need root to install: ${missing[*]} (run as root, or install them yourself)" >&2; exit 1
    fi
  fi
  echo "setup: installing Debian packages: ${missing[*]}"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

stamp="node_modules/.dits-setup"
want="$(sha256sum package-lock.json | cut -d' ' -f1) $(node --version)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing npm packages"
  # npm ci refuses this lock file (npm 11 records no entries for other platforms' optional
  # native packages); npm install follows the lock file all the same.
  npm install --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
  installed=1
fi
# The addon is built by npm install; again when its sources (or the BLAKE3 sources found)
# changed since it was built.
native_stamp="node_modules/.dits-native"
native_want="$(cat native/*.c native/*.h native/binding.gyp native/fuse/*.c native/fuse/binding.gyp scripts/build-native.mjs | sha256sum | cut -d' ' -f1) $(node --version) $(ls -d /usr/share/cargo/registry/blake3-* 2>/dev/null | tr '\n' ' ')"
if [ -z "${installed:-}" ] && [ "$(cat "$native_stamp" 2>/dev/null)" != "$native_want" ]; then
  echo "setup: building the native addon"
  node scripts/build-native.mjs
fi
echo "$native_want" > "$native_stamp"
npm run build --silent
if [ "${DITS_NO_LINK:-}" != 1 ] && [ "${CI:-}" != true ]; then
  npm link --no-audit --no-fund --loglevel=error >/dev/null 2>&1 || echo "setup: could not put git-dits on PATH with npm link; use $(pwd)/bin" >&2
fi
[ "${1:-}" = --quiet ] || echo "setup: done. git-dits: $(command -v git-dits || echo "$(pwd)/bin/git-dits")"
