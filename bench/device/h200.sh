#!/usr/bin/env bash
# The H200 run of bench/run.ts (issue 5), on the device machine, from a copy of this repo with
# .bench-device/ carried (built here by bench/device/prepare.sh). One command; results in $OUT (8 files,
# the device tool's limit):
#   log.txt            everything this script printed
#   env.txt            nvidia-smi, driver, Vulkan loader and ICD files, versions
#   adapter.json       the WebGPU adapter our engine got over Vulkan (must be the NVIDIA one)
#   torch_cuda.jsonl   bench/peers/torch_cuda.py: PyTorch CUDA, fp32 (TF32 off) and TF32, CUDA events
#   bench-resnet.md    ResNet-18 step, batch 8/32/256: ours vs TF.js WebGPU vs PyTorch fp32/TF32, target line
#   bench-resnet.json  the same, every sample
#   bench-kernels.md   matmul, Gram, every ResNet-18 conv (fwd, dx, dw), SC loss: the same columns
#   bench-kernels.json the same, every sample
# The autotuner's table (heuristic vs tuned, every GEMM of a ResNet-18 step at batch 8) is in log.txt; the
# bench phases run on its winners.
#
#   bash bench/device/h200.sh [--budget SECONDS] [--no-tfjs] [--iters N] [--inner K]
#   bash bench/device/h200.sh --dry      # here, without a GPU: every step, tiny cases, any adapter
#
# WebGPU runs on Vulkan only (DENO_WEBGPU_BACKEND=vulkan), and the adapter must be a hardware one: a
# software (llvmpipe, lavapipe) or GL adapter is never benchmarked; the script says so loudly and exits 3
# (PyTorch still runs). --dry rehearses the same steps and commands on this machine: a software adapter
# is accepted (on GL when there is no Vulkan driver), PyTorch runs on the CPU (or is skipped when there is
# none), the bench cases are tiny; about a minute. OUT defaults to a new /tmp/h200-dry-out.* there.
#
# Deno gets no -A: only read of the torch results, write of $OUT, nothing else. The script stops each
# phase at its share of --budget (default 330 s), so results written so far always come back.
# Exit status: 0 all ran; 1 setup failed (message says what is missing); 2 usage; 3 no hardware Vulkan
# adapter; 4 torch_cuda.py failed; 5 a phase had no time left; 6 a bench phase failed or timed out;
# 7 the bench ran on another adapter than the probe found (or a software one).
set -uo pipefail

dry=0
budget=330
no_tfjs=0
iters=10
inner=10
usage="usage: $0 [--dry] [--budget S] [--no-tfjs] [--iters N] [--inner K]"
while [ $# -gt 0 ]; do
  case "$1" in
    --dry) dry=1 ;;
    --budget | --iters | --inner)
      [[ "${2:-}" =~ ^[0-9]+$ ]] || { echo "$1 needs a whole number; $usage" >&2; exit 2; }
      case "$1" in --budget) budget=$2 ;; --iters) iters=$2 ;; --inner) inner=$2 ;; esac
      shift ;;
    --no-tfjs) no_tfjs=1 ;;
    -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
  shift
done

cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
C=$ROOT/.bench-device
if [ -z "${OUT:-}" ]; then
  [ "$dry" = 1 ] || { echo "h200.sh: OUT is not set (the device tool sets it); use --dry to rehearse here" >&2; exit 2; }
  OUT=$(mktemp -d /tmp/h200-dry-out.XXXXXX)
fi
mkdir -p "$OUT" || { echo "h200.sh: cannot create OUT=$OUT" >&2; exit 1; }

main() {
  local start status=0 T DENO hardware=0
  start=$(date +%s)
  left() { echo $((budget - ($(date +%s) - start))); }
  say() { echo "== [$(($(date +%s) - start)) s] $*"; }
  die() { echo "h200.sh: error: $*" >&2; exit 1; }
  fail() { [ "$status" -ne 0 ] || status=$1; }
  loud() { printf '\n!!!!!!!!!!\n!!!!!!!!!! %s\n!!!!!!!!!!\n\n' "$*"; }

  say "h200.sh dry=$dry budget=${budget}s iters=$iters inner=$inner OUT=$OUT"
  for tool in python3 tar timeout; do
    command -v "$tool" >/dev/null || die "'$tool' is not installed on this machine"
  done
  [ -f "$C/deno.xz" ] ||
    die "no $C/deno.xz: run 'bash bench/device/prepare.sh' here first, and carry .bench-device"
  T=$(mktemp -d /tmp/h200-bench.XXXXXX) || die "mktemp failed"
  # shellcheck disable=SC2064 # T is fixed from here on
  trap "rm -rf '$T'" EXIT

  # 1. Unpack: deno, the npm cache of the TF.js peer, the Vulkan loader -------------------------------
  unxz() { # file.xz -> stdout; Python's lzma where the machine has no xz
    if command -v xz >/dev/null; then xz -dc "$1"; else
      python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' "$1"
    fi
  }
  debx() { # file.deb dir; Python's ar and tarfile where the machine has no dpkg
    if command -v dpkg >/dev/null; then dpkg -x "$1" "$2"; else
      python3 - "$1" "$2" <<'PY'
import io, sys, tarfile
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"!<arch>\n", "not an ar archive"
i = 8
while i + 60 <= len(data):
    name, size = data[i:i + 16].decode().strip().rstrip("/"), int(data[i + 48:i + 58])
    if name.startswith("data.tar"):
        tar = tarfile.open(fileobj=io.BytesIO(data[i + 60:i + 60 + size]))
        try:
            tar.extractall(sys.argv[2], filter="tar")
        except TypeError:  # Python without extraction filters
            tar.extractall(sys.argv[2])
        break
    i += 60 + size + (size & 1)
else:
    sys.exit("no data.tar member in " + sys.argv[1])
PY
    fi
  }
  { unxz "$C/deno.xz" >"$T/deno" && chmod +x "$T/deno"; } || die "could not unpack $C/deno.xz (disk full?)"
  DENO=$T/deno
  "$DENO" --version >/dev/null 2>&1 || die "the carried deno does not run here: $("$DENO" --version 2>&1 | head -3)"
  export DENO_DIR=$T/deno_dir DENO_NO_UPDATE_CHECK=1 NO_COLOR=1 PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
  export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$T/xdg}
  mkdir -p "$DENO_DIR"
  # chmod only a folder made here: an existing one (e.g. XDG_RUNTIME_DIR=/tmp) keeps its mode
  [ -d "$XDG_RUNTIME_DIR" ] || { mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"; }
  tfjs_flag=()
  if [ "$no_tfjs" = 1 ]; then
    tfjs_flag=(--no-tfjs)
  elif [ ! -f "$C/npm.tar.xz" ]; then
    say "no $C/npm.tar.xz (prepare.sh --no-tfjs): TF.js off"
    tfjs_flag=(--no-tfjs)
  elif ! unxz "$C/npm.tar.xz" | tar -C "$DENO_DIR" -xf -; then
    loud "the npm cache did not unpack: TF.js off"
    tfjs_flag=(--no-tfjs)
  fi
  # The carried loader and GL dispatch libraries go to a private prefix (not /), found via
  # LD_LIBRARY_PATH, here and there alike; the NVIDIA driver's libraries stay where the machine has them.
  local libdir=$T/gl/usr/lib/x86_64-linux-gnu
  if ls "$C"/gl/*.deb >/dev/null 2>&1; then
    for f in "$C"/gl/*.deb; do debx "$f" "$T/gl" || die "could not unpack $f"; done
    [ -e "$libdir/libvulkan.so.1" ] || die "the carried .debs hold no libvulkan.so.1 ($libdir)"
    export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  fi
  say "unpacked: $("$DENO" --version | head -1); tfjs ${tfjs_flag[*]:-on}; loader $([ -d "$libdir" ] && echo carried || echo "the machine's")"

  # 2. What the machine is (read-only queries; no clock, power or mode changes) ----------------------
  export DENO_WEBGPU_BACKEND=vulkan # never GL: wgpu's GL backend is not what we measure
  {
    echo "## date"; date -u +%FT%TZ
    echo "## uname"; uname -a
    echo "## nvidia-smi"; nvidia-smi 2>&1 | head -30
    echo "## nvidia-smi query"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,clocks.mem,power.draw,power.limit,temperature.gpu,utilization.gpu --format=csv 2>&1
    echo "## vulkan loader (system)"; ldconfig -p 2>/dev/null | grep -i vulkan || echo "none"
    echo "## vulkan loader (carried)"; ls "$libdir" 2>&1
    echo "## ICD files"
    ls -l /usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/share/vulkan/icd.d \
      /usr/local/nvidia/share/vulkan/icd.d 2>&1
    echo "## webgpu backend"; echo "DENO_WEBGPU_BACKEND=$DENO_WEBGPU_BACKEND VK_DRIVER_FILES=${VK_DRIVER_FILES:-}"
    echo "## python"; command -v python3; python3 -c 'import torch; print(torch.__version__, torch.version.cuda)' 2>&1
    echo "## deno"; "$DENO" --version
    echo "## cpus"; nproc
  } >"$OUT/env.txt" 2>&1
  grep -A3 "## nvidia-smi query" "$OUT/env.txt"

  # 3. The WebGPU adapter: a hardware one over Vulkan, never a fallback or GL one ---------------------
  probe() {
    timeout -k 5 60 "$DENO" run --cached-only --allow-env=DENO_WEBGPU_BACKEND bench/device/probe.ts \
      --require-hardware >"$OUT/adapter.json" 2>"$T/probe.err"
  }
  probe_field() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1])).get(sys.argv[2], ""))' \
    "$OUT/adapter.json" "$1" 2>/dev/null; }
  probe
  local probe_rc=$?
  local nv_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  if [ $probe_rc -ne 0 ] && [ -f "$nv_icd" ]; then
    say "no hardware adapter (rc $probe_rc: $(probe_field verdict)): retrying with VK_DRIVER_FILES=$nv_icd"
    export VK_DRIVER_FILES=$nv_icd VK_ICD_FILENAMES=$nv_icd
    export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
    probe
    probe_rc=$?
  fi
  if [ $probe_rc -ne 0 ] && [ "$dry" = 0 ] && [ -d /usr/local/nvidia ] && [ -d "$libdir" ]; then
    say "still none: the device README's recipe, the loader unpacked into / and ldconfig"
    for f in "$C"/gl/*.deb; do debx "$f" /; done
    ldconfig
    export LD_LIBRARY_PATH=${LD_LIBRARY_PATH#"$libdir"}
    probe
    probe_rc=$?
  fi
  if [ $probe_rc -ne 0 ] && [ "$dry" = 1 ] && [ "$(probe_field ok)" != True ]; then
    say "dry run: no Vulkan adapter on this machine (apt-get install mesa-vulkan-drivers gives lavapipe);" \
      "rehearsing on DENO_WEBGPU_BACKEND=gl"
    export DENO_WEBGPU_BACKEND=gl
    probe
    probe_rc=$?
  fi
  head -14 "$OUT/adapter.json"
  [ -s "$T/probe.err" ] && head -5 "$T/probe.err"
  local adapter_name
  adapter_name=$(probe_field name)
  if [ $probe_rc -eq 0 ]; then
    hardware=1
    say "adapter: $adapter_name over Vulkan (hardware)"
  elif [ "$dry" = 1 ] && [ "$(probe_field ok)" = True ]; then
    say "dry run: accepting $(probe_field verdict) over $DENO_WEBGPU_BACKEND"
  elif [ "$dry" = 1 ]; then
    loud "dry run: no WebGPU adapter at all ($(probe_field error)): nothing to rehearse the bench on"
    fail 3
  else
    loud "NO HARDWARE VULKAN ADAPTER: $(probe_field verdict)$(e=$(probe_field error); echo "${e:+: $e}")." \
      "Our engine is NOT benchmarked" \
      "(it would measure a software or GL adapter); PyTorch still runs. See adapter.json, env.txt."
    fail 3
  fi

  # 4. PyTorch on CUDA: fp32 with TF32 off, then TF32 on -----------------------------------------------
  local PY torch_args t rc
  if [ "$dry" = 1 ]; then
    PY=/usr/bin/python3
    [ -x "$PY" ] || PY=$(command -v python3)
    torch_args=(--device cpu --quick --iters 1 --inner 1 --warmup 1 --cases "matmul,resnet" --resnet-batches 1)
  else
    PY=$(command -v python3)
    torch_args=(--iters 20 --inner "$inner")
  fi
  t=$(($(left) < 150 ? $(left) : 150))
  if [ "$dry" = 1 ] && ! "$PY" -c 'import torch' 2>/dev/null; then
    say "dry run: $PY has no torch here: torch_cuda.py not run (on the GPU machine python3 has it)"
    echo '{"id": "info", "info": {"dry": "no torch on the rehearsal machine: torch_cuda.py not run"}}' \
      >"$OUT/torch_cuda.jsonl"
  else
    say "torch_cuda.py (timeout ${t}s): $PY ${torch_args[*]}"
    timeout -k 5 "$t" "$PY" bench/peers/torch_cuda.py "${torch_args[@]}" >"$OUT/torch_cuda.jsonl"
    rc=$?
    say "torch_cuda.py exit $rc, $(grep -c '"median"' "$OUT/torch_cuda.jsonl") timed cases"
    grep '"mode-info"' "$OUT/torch_cuda.jsonl" | cut -c1-400
    [ $rc -eq 0 ] || fail 4
  fi

  # 4b. The autotuner on this adapter: every GEMM of a ResNet-18 step at batch 8, heuristic against tuned
  # (table in log.txt). The bench phases below run on its winners (SUPCON_TUNING=cached), so "ours" is tuned.
  export SUPCON_TUNING=cached SUPCON_TUNING_CACHE=$T/tuning.json
  if [ "$hardware" = 1 ] || { [ "$dry" = 1 ] && [ "$(probe_field ok)" = True ]; }; then
    local tune_args=(--batch 8 --cap-ms 1500)
    [ "$dry" = 1 ] && tune_args=(--batch 1 --width 0.125 --limit 2 --cap-ms 300)
    t=$(($(left) * 25 / 100))
    say "tune (timeout ${t}s): ${tune_args[*]}"
    timeout -k 5 "$t" "$DENO" run --cached-only --allow-read="$T" --allow-write="$T" \
      --allow-env=SUPCON_TUNING,SUPCON_TUNING_CACHE,SUPCON_KERNELS bench/tune.ts "${tune_args[@]}"
    rc=$?
    say "tune exit $rc"
    [ $rc -eq 0 ] || fail 6
  fi

  # 5. Our engine and TF.js (same process, interleaved), joined with the PyTorch lines ----------------
  check_adapter() { # bench-NAME.json ran on the probed adapter, and a hardware one unless --dry
    python3 - "$OUT/bench-$1.json" "$adapter_name" "$dry" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
a = doc.get("adapter") or {}
if a.get("name") != sys.argv[2]:
    sys.exit(f"bench ran on {a.get('name')!r}, the probe found {sys.argv[2]!r}")
if a.get("isFallback") and sys.argv[3] != "1":
    sys.exit(f"bench ran on a fallback adapter {a.get('name')!r}")
PY
  }
  bench() { # name, share of the remaining budget in %, run.ts arguments...
    local name=$1 share=$2
    shift 2
    local t=$(($(left) * share / 100))
    [ "$t" -ge 20 ] || { say "skipping $name: ${t}s left"; fail 5; return; }
    say "bench $name (timeout ${t}s): $*"
    timeout -k 10 "$t" "$DENO" run --cached-only \
      --allow-read="$OUT/torch_cuda.jsonl,$SUPCON_TUNING_CACHE" --allow-write="$OUT/bench-$name.json" \
      --allow-env=SUPCON_TUNING,SUPCON_TUNING_CACHE bench/run.ts "$@" \
      "${tfjs_flag[@]}" --torch-jsonl "$OUT/torch_cuda.jsonl" --json "$OUT/bench-$name.json" >"$OUT/bench-$name.md"
    local rc=$?
    say "bench $name exit $rc"
    [ $rc -eq 0 ] || fail 6
    if [ -s "$OUT/bench-$name.json" ] && ! check_adapter "$name"; then
      loud "bench $name did not run on the probed hardware adapter (above): its numbers are not the GPU's"
      fail 7
    fi
  }
  if [ "$hardware" = 1 ]; then
    bench resnet 45 --cases resnet --iters "$iters" --inner "$inner"
    bench kernels 100 --cases matmul,conv,supcon --iters "$iters" --inner "$inner"
  elif [ "$dry" = 1 ] && [ "$(probe_field ok)" = True ]; then
    # Tiny: one ResNet-18 step at batch 1 (TF.js skipped by --quick), the quick matmuls with TF.js.
    bench resnet 50 --cases resnet --quick --resnet-batches 1 --iters 1 --inner 1
    bench kernels 100 --cases matmul --quick --iters 1 --inner 1
  fi

  # 6. Summary: the ResNet table last, so the tool's output tail holds it -----------------------------
  say "done, status $status; files in $OUT: $(cd "$OUT" && find . -maxdepth 1 -type f -printf '%P ' | sort)"
  [ "$status" -ne 3 ] || loud "NO HARDWARE VULKAN ADAPTER: our engine was not benchmarked (exit 3)"
  for f in kernels resnet; do
    if [ -s "$OUT/bench-$f.md" ]; then
      echo
      echo "#### bench-$f.md"
      grep -v '^- .*(tfjs): \|^- .*(torch' "$OUT/bench-$f.md"
    fi
  done
  exit "$status"
}

main 2>&1 | tee -a "$OUT/log.txt"
exit "${PIPESTATUS[0]}"
