#!/usr/bin/env bash
# Builds what bench/device/h200.sh needs on the GPU machine (which has no network) in the git-ignored
# folder .bench-device/, carried with the device call; nothing here is committed:
#   deno.xz        the deno 2.9.6 binary (x86-64), xz-compressed (the device has no deno)
#   gl/*.deb       the Vulkan loader and GL/EGL dispatch libraries (the device README's recipe)
#   npm.tar.xz     a DENO_DIR holding only the npm packages of the lock file, those of the TF.js peer
#                  pruned to what loads, the others as package.json alone; checked by loading TF.js
#                  from it with --cached-only before it is packed
#   MANIFEST.txt   versions, sizes and checksums
#
#   bash bench/device/prepare.sh [--no-tfjs] [--no-deb] [--fast]
#
#   --no-tfjs  no npm cache (h200.sh then runs bench/run.ts --no-tfjs)
#   --no-deb   no Vulkan loader .debs (h200.sh then relies on the machine's loader)
#   --fast     xz -0 for the deno binary (a few seconds, 35 MiB) instead of xz -9 (about 1.5 min, 28 MiB):
#              for rehearsals (h200.sh --dry, tests/device_script_test.ts)
#
# Deno: $DENO if set, else `deno` on PATH if it is 2.9.6, else the binary that `npx -y deno@2.9.6` runs
# (the project's way; its npm package holds the real binary, which is what travels). The npm packages
# come from Deno's own cache ($DENO_DIR or its default), filled by `deno cache` of the bench's entry
# points (as any deno command of the project would); where each package lies is asked of
# `deno info --json`, not assumed.
# Needs: git, xz, python3, tar; apt-get (download only, no install) unless --no-deb. Idempotent: an
# artifact is rebuilt only when its input changed (the npm cache is always restaged; a few seconds).
set -Eeuo pipefail
DENO_VERSION=2.9.6
DEST=.bench-device
LIMIT_MIB=64

die() {
  echo "prepare.sh: error: $*" >&2
  exit 1
}
trap 'echo "prepare.sh: error: command failed (exit $?) at line $LINENO: $BASH_COMMAND" >&2' ERR

with_tfjs=1
with_deb=1
xz_level=9
for a in "$@"; do
  case "$a" in
    --no-tfjs) with_tfjs=0 ;;
    --no-deb) with_deb=0 ;;
    --fast) xz_level=0 ;;
    -h | --help) sed -n '2,/^set -E/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [--no-tfjs] [--no-deb] [--fast]" >&2; exit 2 ;;
  esac
done

for tool in git xz python3 tar sha256sum find du awk; do
  command -v "$tool" >/dev/null || die "'$tool' is not installed (needed to stage .bench-device/)"
done
[ "$with_deb" = 0 ] || command -v apt-get >/dev/null ||
  die "'apt-get' is not available to download the Vulkan loader .debs: rerun with --no-deb"
[ "$(uname -m)" = x86_64 ] ||
  die "this machine is $(uname -m); the device machine is x86-64 and needs an x86-64 deno binary"

here=$(cd "$(dirname "$0")" && pwd)
root=$(git -C "$here" rev-parse --show-toplevel 2>/dev/null) ||
  die "$here is not inside a git checkout (run prepare.sh from a clone of the repository)"
cd "$root"
git check-ignore -q "$DEST/x" || die "$DEST/ is not git-ignored: add /$DEST/ to .gitignore"
mkdir -p "$DEST"
export DENO_NO_UPDATE_CHECK=1 NO_COLOR=1

# 0. Which deno ------------------------------------------------------------------------------------
deno_version() { "$1" --version 2>/dev/null | awk 'NR == 1 { print $2 }'; }
if [ -n "${DENO:-}" ]; then
  deno_bin=$(command -v "$DENO" || true)
  if [ -z "$deno_bin" ] || [ ! -x "$deno_bin" ]; then die "DENO=$DENO is not an executable"; fi
elif command -v deno >/dev/null && [ "$(deno_version deno)" = "$DENO_VERSION" ]; then
  deno_bin=$(command -v deno)
else
  command -v npx >/dev/null ||
    die "needs Deno $DENO_VERSION: no 'deno' $DENO_VERSION on PATH and no 'npx' (Node.js) to fetch it with" \
      "'npx -y deno@$DENO_VERSION'; install Node.js, or set DENO=/path/to/deno"
  echo "locating the deno binary of npx -y deno@$DENO_VERSION ..."
  deno_bin=$(npx -y "deno@$DENO_VERSION" eval 'console.log(Deno.execPath())') ||
    die "'npx -y deno@$DENO_VERSION' failed (no access to the npm registry?); or set DENO=/path/to/deno"
fi
deno_bin=$(readlink -f "$deno_bin")
[ "$(deno_version "$deno_bin")" = "$DENO_VERSION" ] ||
  die "$deno_bin is deno '$(deno_version "$deno_bin")', not $DENO_VERSION (the version deno.lock and the npm cache layout are made with)"
[ "$(head -c 4 "$deno_bin" | od -An -c | tr -d ' ')" = '177ELF' ] ||
  die "$deno_bin is not an ELF binary (a wrapper script?): set DENO=/path/to/the/real/deno"
echo "deno: $deno_bin ($DENO_VERSION)"

# 1. deno binary -------------------------------------------------------------------------------------
deno_sum=$(sha256sum "$deno_bin" | cut -d' ' -f1)
if [ ! -f "$DEST/deno.xz" ] || [ "$(cat "$DEST/deno.sha256" 2>/dev/null)" != "$deno_sum xz-$xz_level" ]; then
  echo "compressing $deno_bin ($(du -h "$deno_bin" | cut -f1)) with xz -$xz_level ..."
  xz "-$xz_level" -T2 -c "$deno_bin" >"$DEST/deno.xz.tmp" || die "xz of $deno_bin failed (disk full?)"
  mv "$DEST/deno.xz.tmp" "$DEST/deno.xz"
  echo "$deno_sum xz-$xz_level" >"$DEST/deno.sha256"
fi

# 2. Vulkan loader (+ GL/EGL dispatch) debs, as /work/.library/device/README.md says -----------------
debs=(libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
if [ "$with_deb" = 1 ]; then
  missing=()
  for d in "${debs[@]}"; do ls "$DEST/gl/${d}_"*.deb >/dev/null 2>&1 || missing+=("$d"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "downloading ${missing[*]} (amd64 .debs) ..."
    mkdir -p "$DEST/gl" /tmp/amd64/partial
    o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
    if ! { apt-get "${o[@]}" -qq update && (cd "$DEST/gl" && apt-get "${o[@]}" -qq download "${missing[@]}"); } \
      >/tmp/bench-device-apt.log 2>&1; then
      die "apt-get could not download ${missing[*]} (see /tmp/bench-device-apt.log; no network to the" \
        "Debian mirrors?): rerun with --no-deb to carry no loader"
    fi
  fi
else
  rm -rf "$DEST/gl"
fi

# 3. npm packages for the TF.js peer (bench/peers/tfjs.ts), pruned ----------------------------------
if [ "$with_tfjs" = 1 ]; then
  stage=$(mktemp -d /tmp/bench-device-npm.XXXXXX)
  trap 'rm -rf "$stage"' EXIT
  entries=(bench/run.ts bench/peers/tfjs.ts bench/device/probe.ts bench/device/load_tfjs.ts)
  # Fills Deno's cache with every package of the lock file (a no-op when they are there).
  "$deno_bin" cache "${entries[@]}" >"$stage/cache.log" 2>&1 || {
    tail -20 "$stage/cache.log" >&2
    die "'deno cache ${entries[*]}' failed (above): no access to the npm registry?"
  }
  "$deno_bin" info --json >"$stage/dirs.json" || die "'deno info --json' failed"
  "$deno_bin" info --json bench/peers/tfjs.ts >"$stage/graph.json" ||
    die "'deno info --json bench/peers/tfjs.ts' failed"
  # The TF.js closure in full (less types, maps, docs, and for @tensorflow/* all but the CommonJS
  # bundle that package.json's "main" names: what Deno loads); every other package of the lock file as
  # its package.json alone (Deno wants every locked package in the cache before it loads any).
  python3 - "$stage/dirs.json" "$stage/graph.json" "$stage/deno_dir" <<'PY' || die "staging the npm packages failed (above)"
import json, os, shutil, sys
dirs, graph, dst = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), sys.argv[3]
deno_dir = os.path.realpath(dirs["denoDir"])
pkgs = graph.get("npmPackages", {})
roots = [m["npmPackage"] for m in graph["modules"] if m.get("kind") == "npm"]
if not roots:
    sys.exit("deno info names no npm package for bench/peers/tfjs.ts")
seen, todo = set(), list(roots)
while todo:
    key = todo.pop()
    if key not in seen:
        seen.add(key)
        todo.extend(pkgs[key]["dependencies"])
for key, p in sorted(pkgs.items()):
    src = os.path.realpath(p.get("localPath") or "")
    if not os.path.isfile(os.path.join(src, "package.json")):
        sys.exit(f"npm package {key} is not in Deno's cache (no {src}/package.json)")
    if os.path.commonpath([src, deno_dir]) != deno_dir:
        sys.exit(f"npm package {key} lies outside DENO_DIR {deno_dir} ({src}): a node_modules folder?")
    out = os.path.join(dst, os.path.relpath(src, deno_dir))
    name = p["name"]
    if key not in seen or name.startswith("@types/") or name in ("@webgpu/types", "core-js"):
        keep = {"package.json"}
    elif name.startswith("@tensorflow/"):
        main = json.load(open(os.path.join(src, "package.json"))).get("main")
        if not main:
            sys.exit(f"{key}: package.json names no main")
        keep = {"package.json", os.path.normpath(main)}
    else:
        keep = None  # the whole package, less the files below
    for d, _, files in os.walk(src):
        for f in files:
            rel = os.path.relpath(os.path.join(d, f), src)
            if rel != "package.json" and (
                (keep is not None and rel not in keep) or f.endswith((".map", ".d.ts", ".md", ".ts"))
            ):
                continue
            os.makedirs(os.path.join(out, os.path.dirname(rel)), exist_ok=True)
            shutil.copy2(os.path.join(d, f), os.path.join(out, rel), follow_symlinks=True)
print(f"npm: {len(pkgs)} packages in deno.lock, {len(seen)} of them for TF.js")
PY
  # The check: TF.js loads from the staged cache alone, offline.
  DENO_DIR="$stage/deno_dir" "$deno_bin" run --cached-only bench/device/load_tfjs.ts >"$stage/load.log" 2>&1 || {
    tail -20 "$stage/load.log" >&2
    die "TF.js does not load from the pruned npm cache (above): prune less in prepare.sh, or use --no-tfjs"
  }
  tar -C "$stage/deno_dir" -cf - npm | xz -9 -T2 >"$DEST/npm.tar.xz.tmp" || die "packing the npm cache failed"
  mv "$DEST/npm.tar.xz.tmp" "$DEST/npm.tar.xz"
  echo "npm cache staged: $(du -sh "$stage/deno_dir/npm" | cut -f1), packed $(du -h "$DEST/npm.tar.xz" | cut -f1)"
else
  rm -f "$DEST/npm.tar.xz"
fi

# 4. Manifest and size check -----------------------------------------------------------------------
{
  echo "built $(date -u +%FT%TZ) on $(uname -m)"
  "$deno_bin" --version | head -1
  echo "deno sha256 $deno_sum, xz -$xz_level"
  echo "tfjs $([ "$with_tfjs" = 1 ] && echo on || echo off)"
  (cd "$DEST" && find . -type f ! -name MANIFEST.txt -printf '%s\t%p\n' | sort -k2)
} >"$DEST/MANIFEST.txt"
carry=$(du -sb "$DEST" | cut -f1)
tree=$( (git ls-files -z --cached --others --exclude-standard | xargs -0 -r stat -c %s 2>/dev/null || true) |
  awk '{ s += $1 } END { print s + 0 }')
total=$((carry + tree))
awk -v c="$carry" -v t="$tree" -v l="$LIMIT_MIB" -v d="$DEST" 'BEGIN {
  m = 1048576; printf "carry %s: %.1f MiB; working tree: %.1f MiB; together %.1f MiB of %d MiB\n", d, c / m, t / m, (c + t) / m, l }'
if [ "$total" -gt $((LIMIT_MIB * 1048576 - 2 * 1048576)) ]; then
  die "too large for the device call (keep 2 MiB spare): rerun without --fast, or with --no-tfjs"
fi
