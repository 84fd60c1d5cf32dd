#!/usr/bin/env bash
# Installs everything Dits needs on Debian: system packages (as root, or through sudo),
# npm packages, the native chunker, the compiled CLI, and git-dits / git-remote-dits on PATH.
# Idempotent: run it again at any time.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(ffmpeg git-lfs restic rclone b3sum libfuse2 fuse3 python3 make g++)
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
fi
npm run build --silent
if [ "${DITS_NO_LINK:-}" != 1 ] && [ "${CI:-}" != true ]; then
  npm link --no-audit --no-fund --loglevel=error >/dev/null 2>&1 || echo "setup: could not put git-dits on PATH with npm link; use $(pwd)/bin" >&2
fi
[ "${1:-}" = --quiet ] || echo "setup: done. git-dits: $(command -v git-dits || echo "$(pwd)/bin/git-dits")"
