#!/usr/bin/env bash
# The H200 run of bench/run.ts (issue 5), on the device machine, from a copy of this repo with
# .bench-device/ carried (built here by bench/device/prepare.sh). One command; results in $OUT:
#   log.txt            everything this script printed
#   env.txt            nvidia-smi, driver, Vulkan loader and ICD files, versions
#   adapter.json       the WebGPU adapter our engine got (must be the NVIDIA one, not a fallback)
#   torch_cuda.jsonl   bench/peers/torch_cuda.py: PyTorch CUDA, fp32 (TF32 off) and TF32, CUDA events
#   bench-resnet.md    ResNet-18 step, batch 8/32/256: ours vs TF.js WebGPU vs PyTorch fp32/TF32, target line
#   bench-resnet.json  the same, every sample
#   bench-kernels.md   matmul, Gram, every ResNet-18 conv (fwd, dx, dw), SC loss: the same columns
#   bench-kernels.json the same, every sample
#
#   bash bench/device/h200.sh [--budget SECONDS] [--no-tfjs] [--iters N] [--inner K]
#   bash bench/device/h200.sh --dry      # here, without a GPU: tiny cases, torch on the CPU, any adapter
#
# Deno gets no -A: only read of the torch results, write of $OUT, nothing else. The script stops each
# phase at its share of --budget (default 330 s), so results written so far always come back.
set -uo pipefail

dry=0
budget=330
tfjs_flag=()
iters=10
inner=10
while [ $# -gt 0 ]; do
  case "$1" in
    --dry) dry=1 ;;
    --budget) budget=$2; shift ;;
    --no-tfjs) tfjs_flag=(--no-tfjs) ;;
    --iters) iters=$2; shift ;;
    --inner) inner=$2; shift ;;
    *) echo "usage: $0 [--dry] [--budget S] [--no-tfjs] [--iters N] [--inner K]" >&2; exit 2 ;;
  esac
  shift
done

cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
C=$ROOT/.bench-device
if [ -z "${OUT:-}" ]; then
  [ "$dry" = 1 ] || { echo "OUT is not set (the device tool sets it); use --dry to test here" >&2; exit 2; }
  OUT=$(mktemp -d /tmp/h200-dry-out.XXXXXX)
fi
mkdir -p "$OUT"
T=$(mktemp -d /tmp/h200-bench.XXXXXX)
exec > >(tee -a "$OUT/log.txt") 2>&1
start=$(date +%s)
left() { echo $((budget - ($(date +%s) - start))); }
say() { echo "== [$(($(date +%s) - start)) s] $*"; }
status=0
fail() { [ "$status" -ne 0 ] || status=$1; }

say "h200.sh dry=$dry budget=${budget}s iters=$iters inner=$inner OUT=$OUT"
[ -f "$C/deno.xz" ] || { echo "no $C/deno.xz: run bash bench/device/prepare.sh here first, and carry .bench-device" >&2; exit 1; }

# 1. Unpack: deno, the npm cache of the TF.js peer, the Vulkan loader ---------------------------------
unxz() { # file.xz -> stdout; Python's lzma where the machine has no xz
  if command -v xz >/dev/null; then xz -dc "$1"; else
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' "$1"
  fi
}
unxz "$C/deno.xz" >"$T/deno" && chmod +x "$T/deno" || { echo "could not unpack deno" >&2; exit 1; }
DENO=$T/deno
export DENO_DIR=$T/deno_dir DENO_NO_UPDATE_CHECK=1 NO_COLOR=1 PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$T/xdg}
mkdir -p "$DENO_DIR" "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
if [ -f "$C/npm.tar.xz" ] && [ ${#tfjs_flag[@]} -eq 0 ]; then
  unxz "$C/npm.tar.xz" | tar -C "$DENO_DIR" -xf - || { echo "npm cache unpack failed: TF.js off"; tfjs_flag=(--no-tfjs); }
else
  tfjs_flag=(--no-tfjs)
fi
# The carried loader and GL dispatch libraries go to a private prefix (not /), found via LD_LIBRARY_PATH,
# here and there alike; the NVIDIA driver's libraries stay where the machine has them.
if ls "$C"/gl/*.deb >/dev/null 2>&1; then
  for f in "$C"/gl/*.deb; do dpkg -x "$f" "$T/gl"; done
  export LD_LIBRARY_PATH="$T/gl/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
say "unpacked: $("$DENO" --version | head -1); tfjs ${tfjs_flag[*]:-on}"

# 2. What the machine is (read-only queries; no clock, power or mode changes) ------------------------
{
  echo "## date"; date -u +%FT%TZ
  echo "## uname"; uname -a
  echo "## nvidia-smi"; nvidia-smi 2>&1 | head -30
  echo "## nvidia-smi query"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,clocks.mem,power.draw,power.limit,temperature.gpu,utilization.gpu --format=csv 2>&1
  echo "## vulkan loader (system)"; ldconfig -p 2>/dev/null | grep -i vulkan || echo "none"
  echo "## vulkan loader (carried)"; ls "$T/gl/usr/lib/x86_64-linux-gnu" 2>&1
  echo "## ICD files"
  ls -l /usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/share/vulkan/icd.d \
    /usr/local/nvidia/share/vulkan/icd.d 2>&1
  echo "## python"; command -v python3; python3 -c 'import torch; print(torch.__version__, torch.version.cuda)' 2>&1
  echo "## deno"; "$DENO" --version
  echo "## cpus"; nproc
} >"$OUT/env.txt" 2>&1
grep -A3 "## nvidia-smi query" "$OUT/env.txt"

# 3. The WebGPU adapter: must be the GPU, not a fallback ---------------------------------------------
probe() { timeout -k 5 60 "$DENO" run --cached-only bench/device/probe.ts --require-hardware >"$OUT/adapter.json"; }
probe
probe_rc=$?
nv_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ $probe_rc -ne 0 ] && [ -f "$nv_icd" ]; then
  say "no hardware adapter (rc $probe_rc): retrying with VK_DRIVER_FILES=$nv_icd"
  export VK_DRIVER_FILES=$nv_icd VK_ICD_FILENAMES=$nv_icd
  export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  probe
  probe_rc=$?
fi
if [ $probe_rc -ne 0 ] && [ "$dry" = 0 ] && [ -d /usr/local/nvidia ] && ls "$C"/gl/*.deb >/dev/null 2>&1; then
  say "still none: the device README's recipe, the loader unpacked into / and ldconfig"
  for f in "$C"/gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
  export LD_LIBRARY_PATH=${LD_LIBRARY_PATH#"$T/gl/usr/lib/x86_64-linux-gnu"}
  probe
  probe_rc=$?
fi
head -12 "$OUT/adapter.json"
hardware=1
if [ $probe_rc -ne 0 ]; then
  hardware=0
  if [ "$dry" = 1 ]; then
    say "dry run: accepting the fallback adapter"
  else
    say "WARNING: no hardware WebGPU adapter (see adapter.json, env.txt): PyTorch runs, our engine does not"
    fail 3
  fi
fi

# 4. PyTorch on CUDA: fp32 with TF32 off, then TF32 on -------------------------------------------------
if [ "$dry" = 1 ]; then
  PY=/usr/bin/python3
  torch_args=(--device cpu --quick --iters 2 --inner 1 --warmup 1 --cases matmul,resnet)
else
  PY=$(command -v python3)
  torch_args=(--iters 20 --inner "$inner")
fi
t=$(($(left) < 150 ? $(left) : 150))
say "torch_cuda.py (timeout ${t}s): $PY ${torch_args[*]}"
timeout -k 5 "$t" "$PY" bench/peers/torch_cuda.py "${torch_args[@]}" >"$OUT/torch_cuda.jsonl"
rc=$?
say "torch_cuda.py exit $rc, $(grep -c '"median"' "$OUT/torch_cuda.jsonl") timed cases"
grep '"mode-info"' "$OUT/torch_cuda.jsonl" | cut -c1-400
[ $rc -eq 0 ] || fail 4

# 5. Our engine and TF.js (same process, interleaved), joined with the PyTorch lines ----------------------
bench() { # name, share of the remaining budget in %, run.ts arguments...
  local name=$1 share=$2
  shift 2
  local t=$(($(left) * share / 100))
  [ "$t" -ge 20 ] || { say "skipping $name: ${t}s left"; fail 5; return; }
  say "bench $name (timeout ${t}s): $*"
  timeout -k 10 "$t" "$DENO" run --cached-only --allow-read="$OUT/torch_cuda.jsonl" \
    --allow-write="$OUT/bench-$name.json" bench/run.ts "$@" "${tfjs_flag[@]}" \
    --torch-jsonl "$OUT/torch_cuda.jsonl" --json "$OUT/bench-$name.json" >"$OUT/bench-$name.md"
  local rc=$?
  say "bench $name exit $rc"
  [ $rc -eq 0 ] || fail 6
}
if [ "$hardware" = 1 ] || [ "$dry" = 1 ]; then
  if [ "$dry" = 1 ]; then
    bench resnet 50 --cases resnet --quick --iters 2 --inner 1
    bench kernels 100 --cases matmul --quick --iters 2 --inner 1
  else
    bench resnet 45 --cases resnet --iters "$iters" --inner "$inner"
    bench kernels 100 --cases matmul,conv,supcon --iters "$iters" --inner "$inner"
  fi
fi

# 6. Summary: the ResNet table last, so the tool's output tail holds it --------------------------------
rm -rf "$T"
say "done, status $status; files in $OUT: $(cd "$OUT" && ls | tr '\n' ' ')"
for f in kernels resnet; do
  [ -s "$OUT/bench-$f.md" ] && { echo; echo "#### bench-$f.md"; grep -v '^- .*(tfjs): \|^- .*(torch' "$OUT/bench-$f.md"; }
done
exit $status
