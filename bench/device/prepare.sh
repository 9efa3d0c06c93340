#!/usr/bin/env bash
# Builds what bench/device/h200.sh needs on the GPU machine, in the git-ignored folder .bench-device/
# (carried with the device call; nothing here is committed):
#   deno.xz        this machine's deno binary, xz-compressed (the device has no deno)
#   gl/*.deb       the Vulkan loader and GL/EGL dispatch libraries (device README's recipe)
#   npm.tar.xz     a DENO_DIR holding only the npm packages of the TF.js peer, pruned to what runs
#   MANIFEST.txt   versions, sizes and checksums
# Usage (repo root): bash bench/device/prepare.sh [--no-tfjs] [--no-deb]
# Needs: deno, xz, python3, apt-get (download only, no install). Takes about a minute and a half
# (xz of the deno binary). Idempotent: rebuilds each artifact whose input changed.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
DEST=.bench-device
LIMIT_MIB=64
with_tfjs=1
with_deb=1
for a in "$@"; do
  case "$a" in
    --no-tfjs) with_tfjs=0 ;;
    --no-deb) with_deb=0 ;;
    *) echo "usage: $0 [--no-tfjs] [--no-deb]" >&2; exit 2 ;;
  esac
done
git check-ignore -q "$DEST/x" || { echo "$DEST/ is not git-ignored: add /$DEST/ to .gitignore" >&2; exit 1; }
mkdir -p "$DEST"

# 1. deno --------------------------------------------------------------------------------------
deno_bin=$(readlink -f "$(command -v deno)")
deno_sum=$(sha256sum "$deno_bin" | cut -d' ' -f1)
if [ ! -f "$DEST/deno.xz" ] || [ "$(cat "$DEST/deno.sha256" 2>/dev/null)" != "$deno_sum" ]; then
  echo "compressing $deno_bin ($(du -h "$deno_bin" | cut -f1)) ..."
  xz -9 -T2 -c "$deno_bin" >"$DEST/deno.xz.tmp"
  mv "$DEST/deno.xz.tmp" "$DEST/deno.xz"
  echo "$deno_sum" >"$DEST/deno.sha256"
fi

# 2. Vulkan loader (+ GL/EGL dispatch) debs, as /work/.library/device/README.md says ----------------
if [ "$with_deb" = 1 ] && ! ls "$DEST"/gl/libvulkan1_*.deb >/dev/null 2>&1; then
  mkdir -p "$DEST/gl" /tmp/amd64/partial
  o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
  apt-get "${o[@]}" update >/dev/null
  (cd "$DEST/gl" && apt-get "${o[@]}" download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi

# 3. npm packages for the TF.js peer (bench/peers/tfjs.ts), pruned ------------------------------------------
if [ "$with_tfjs" = 1 ]; then
  src_npm="$(deno info --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["npmCache"])')"
  stage=$(mktemp -d /tmp/bench-device-npm.XXXXXX)
  trap 'rm -rf "$stage"' EXIT
  # Make sure the lock file's packages are in the local cache (no-op when they are; else downloads).
  git grep -lz '"npm:' -- '*.ts' | xargs -0 deno cache --lock=deno.lock
  # The packages the lock file resolves for the three TF.js specifiers, with their dependencies.
  python3 - "$src_npm" "$stage/npm" <<'PY'
import json, os, shutil, sys
src, dst = sys.argv[1], sys.argv[2]
lock = json.load(open("deno.lock"))
npm = lock["npm"]
todo = [f"{k[4:].rsplit('@', 1)[0]}@{v}" for k, v in lock["specifiers"].items() if "@tensorflow/" in k]
seen = set()  # the TF.js closure: loaded by bench/run.ts
while todo:
    key = todo.pop()
    if key in seen:
        continue
    seen.add(key)
    for dep in npm[key].get("dependencies", []):
        todo.append(dep if dep in npm else next(k for k in npm if k.startswith(dep + "@")))
reg = os.path.join(src, "registry.npmjs.org")
out = os.path.join(dst, "registry.npmjs.org")
# Deno makes sure every package of the lock file is in the cache before it loads any, so all of them
# travel; those outside the TF.js closure (the plotting packages) as package.json alone.
for key in sorted(npm):
    at = key.index("@", 1)  # name@version[_peer-suffix]; scoped names start with "@"
    name, ver = key[:at], key[at + 1:].split("_", 1)[0]
    pkg = os.path.join(reg, name, ver)
    if not os.path.isdir(pkg):
        sys.exit(f"missing in the npm cache: {pkg}")
    shutil.copytree(pkg, os.path.join(out, name, ver), symlinks=True)
    shutil.copy2(os.path.join(reg, name, "registry.json"), os.path.join(out, name, "registry.json"))
    meta = json.load(open(os.path.join(pkg, "package.json")))
    # Prune: deno run needs each package's folder and package.json; the TF.js packages load only their
    # CommonJS node bundles (dist/*.node.js); types, source maps and other bundles never load.
    root = os.path.join(out, name, ver)
    if key not in seen or name.startswith("@types/") or name in ("@webgpu/types", "core-js"):
        keep = {"package.json"}
    elif name.startswith("@tensorflow/"):
        keep = {"package.json", os.path.normpath(meta["main"])}
    else:
        keep = None
    for d, _, files in os.walk(root):
        for f in files:
            rel = os.path.relpath(os.path.join(d, f), root)
            if (keep is not None and rel not in keep) or f.endswith((".map", ".d.ts", ".md", ".ts")):
                if rel != "package.json":
                    os.remove(os.path.join(d, f))
print(f"{len(npm)} npm packages, {len(seen)} of them for TF.js")
PY
  find "$stage/npm" -type d -empty -delete
  tar -C "$stage" -cf - npm | xz -9 -T2 >"$DEST/npm.tar.xz.tmp"
  mv "$DEST/npm.tar.xz.tmp" "$DEST/npm.tar.xz"
  echo "npm stage $(du -sh "$stage/npm" | cut -f1), packed $(du -h "$DEST/npm.tar.xz" | cut -f1)"
else
  rm -f "$DEST/npm.tar.xz"
fi

# 4. Manifest and size check -----------------------------------------------------------------------
{
  echo "built $(date -u +%FT%TZ) on $(uname -m)"
  deno --version | head -1
  echo "deno sha256 $deno_sum"
  (cd "$DEST" && find . -type f ! -name MANIFEST.txt -printf '%s\t%p\n' | sort -k2)
} >"$DEST/MANIFEST.txt"
carry=$(du -sb "$DEST" | cut -f1)
tree=$( (git ls-files -z --cached --others --exclude-standard | xargs -0 -r stat -c %s 2>/dev/null || true) |
  awk '{s+=$1} END {print s+0}')
total=$((carry + tree))
printf 'carry %s: %.1f MiB; working tree: %.1f MiB; together %.1f MiB of %d MiB\n' "$DEST" \
  "$(echo "$carry/1048576" | bc -l)" "$(echo "$tree/1048576" | bc -l)" "$(echo "$total/1048576" | bc -l)" "$LIMIT_MIB"
if [ "$total" -gt $((LIMIT_MIB * 1048576 - 2 * 1048576)) ]; then
  echo "too large for the device call (keep 2 MiB spare): rerun with --no-tfjs" >&2
  exit 1
fi
