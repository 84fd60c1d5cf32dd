#!/bin/bash
# Issue 19's snapshot figures, by hand (not yet a section of bench/run.ts):
#   1. `git dits snapshot` of an unchanged working tree (10 x 1 GiB random .mov, committed)
#   2. after a 100-byte edit to one 1 GiB file: `git dits snapshot` against `restic backup`
#      of the same tree (restic repository initialised and backed up once beforehand)
# Usage: bench/snapshot-figures.sh <work dir> [runs]
#   <work dir>/tree: the repository (made by `setup` below when missing), <work dir>/restic.
# Timings are /usr/bin/time (wall, user, sys: children included); new bytes are the growth
# of .git (Dits) or of the restic repository, summed over files (freshened objects count 0).
set -euo pipefail
W=$(realpath "$1"); RUNS=${2:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export HOME=$W/home GIT_CONFIG_NOSYSTEM=1 PATH=$ROOT/bin:$PATH RESTIC_PASSWORD=bench RESTIC_REPOSITORY=$W/restic
mkdir -p "$HOME"
if [ ! -d "$W/tree/.git" ]; then
  git config --global user.name bench; git config --global user.email bench@example.com; git config --global init.defaultBranch main
  git dits install >/dev/null
  git init -q "$W/tree"; cd "$W/tree"; git dits init >/dev/null; git dits track '*.mov' >/dev/null
  for i in 0 1 2 3 4 5 6 7 8 9; do openssl rand -out clip$i.mov 1073741824; done
  mkdir -p docs; for i in $(seq 1 200); do echo "note $i" > docs/n$i.txt; done
  git dits add clip*.mov >/dev/null; git add -A; git commit -qm footage
fi
if [ ! -d "$W/restic" ]; then restic init -q; (cd "$W/tree" && restic backup -q --exclude .git .); fi
cd "$W/tree"
sizes() { python3 -c 'import os,sys
t={}
for d,_,fs in os.walk(sys.argv[1]):
  for f in fs:
    p=os.path.join(d,f)
    try: t[p]=os.lstat(p).st_size
    except FileNotFoundError: pass
print(sum(t.values()))' "$1"; }
timed() { /usr/bin/time -f "%e s wall %U u %S s" "$@" 2>&1 >/dev/null | tail -1; }

echo "== unchanged tree: git dits snapshot"
for r in $(seq 1 "$RUNS"); do
  a=$(sizes .git); t=$(timed git dits snapshot); b=$(sizes .git); echo "run $r: $t, new bytes $((b - a))"
done
echo "== 100-byte edit to clip0.mov (1 GiB): git dits snapshot vs restic backup"
for r in $(seq 1 "$RUNS"); do
  head -c 100 /dev/urandom | dd of=clip0.mov bs=1 seek=$((r * 7654321)) conv=notrunc status=none
  sync; cat clip0.mov > /dev/null
  for tool in $( [ $((r % 2)) = 1 ] && echo "dits restic" || echo "restic dits" ); do
    if [ $tool = dits ]; then
      a=$(sizes .git); t=$(timed git dits snapshot); b=$(sizes .git)
    else
      a=$(sizes "$W/restic"); t=$(timed restic backup -q --exclude .git .); b=$(sizes "$W/restic")
    fi
    echo "run $r $tool: $t, new bytes $((b - a))"
  done
done
