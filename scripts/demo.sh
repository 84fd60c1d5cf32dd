#!/usr/bin/env bash
# The main job, end to end, on the embedded defaults: sets everything up (scripts/setup.sh),
# then in a temporary directory (with its own HOME, so your ~/.gitconfig is untouched):
# a clip made by ffmpeg is tracked, committed, edited twice (a metadata change and a
# 100-byte overwrite), pushed to a local dits::file:// remote, cloned back and verified;
# then the same through `git dits serve` (SQLite and a local data directory).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh" --quiet
export PATH="$root/bin:$PATH"

work="$(mktemp -d "${TMPDIR:-/tmp}/dits-demo.XXXXXX")"
export HOME="$work/home" GIT_CONFIG_NOSYSTEM=1
mkdir -p "$HOME"
git config --global user.name "Dits Demo"
git config --global user.email demo@example.com
git config --global init.defaultBranch main
step() { printf '\n== %s\n' "$*"; }
stored() { git dits du --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).packFileBytes))'; }

step "install and init (work dir: $work)"
git dits install
git init -q "$work/film" && cd "$work/film"
git dits init
git dits track '*.mp4' '*.mov'

step "a 20-second 1080p H.264 clip with audio and a start timecode, made by ffmpeg"
ffmpeg -loglevel error -f lavfi -i "testsrc2=size=1920x1080:rate=25,noise=alls=12:allf=t" -f lavfi -i "sine=frequency=440:sample_rate=48000" \
  -t 20 -c:v libx264 -preset ultrafast -b:v 40M -c:a aac -timecode 01:00:00:00 -shortest clip.mp4
ls -l clip.mp4
git add .gitattributes clip.mp4
git commit -qm "Add clip"
echo "git stores a pointer of $(git cat-file -s HEAD:clip.mp4) bytes:"; git cat-file -p HEAD:clip.mp4
git dits inspect clip.mp4
before=$(stored)

step "metadata-only edit (title), as an editor would: stores almost nothing new"
ffmpeg -loglevel error -i clip.mp4 -map 0:v -map 0:a -c copy -metadata title="Take 2" -timecode 01:00:00:00 retitled.mp4 && mv retitled.mp4 clip.mp4
git commit -qam "Retitle"
after=$(stored); echo "new bytes stored: $((after - before)) of $(stat -c %s clip.mp4)"
git diff HEAD~1 HEAD -- clip.mp4

step "100 bytes overwritten in the middle"
size=$(stat -c %s clip.mp4); head -c 100 /dev/urandom | dd of=clip.mp4 bs=1 seek=$((size / 2)) conv=notrunc status=none
git commit -qam "Damage the middle"
after2=$(stored); echo "new bytes stored: $((after2 - after))"
git dits du

step "push to a local remote (dits::file://) and clone it back"
git remote add origin "dits::file://$work/remote"
git push -q -u origin main
git clone -q "dits::file://$work/remote" "$work/clone"
cmp clip.mp4 "$work/clone/clip.mp4" && echo "clone is byte-identical; git status in the clone: '$(git -C "$work/clone" status --porcelain)'"

step "the Dits server on SQLite and a local data directory (127.0.0.1)"
data="$work/server-data"
git dits server user add demo --admin --data "$data" >/dev/null
git dits server repo create team/film --data "$data" >/dev/null
git dits server grant demo team/film admin --data "$data" >/dev/null
export DITS_TOKEN="$(git dits server token create demo laptop --data "$data" --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).token))')"
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
git dits serve --data "$data" --port "$port" > "$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 50); do node -e "fetch('http://127.0.0.1:$port/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))" && break; sleep 0.2; done
git remote add hub "dits::http://127.0.0.1:$port/team/film"
git push -q hub main
git clone -q "dits::http://127.0.0.1:$port/team/film" "$work/clone-hub"
cmp clip.mp4 "$work/clone-hub/clip.mp4" && echo "clone through the server is byte-identical"
git dits lock --remote hub clip.mp4
git dits locks --remote hub
git dits unlock --remote hub clip.mp4

step "done"
echo "Everything is in $work (delete it when you are done)."
