"""PyTorch CUDA peer of bench/run.ts: the cases of torch_cpu.py (same ids, shapes and FLOP conventions)
on a CUDA GPU in fp32, once with TF32 off ("fp32") and once with TF32 on ("tf32"). One JSON line per
case on stdout, as torch_cpu.py writes them plus the mode:
    {"id", "mode", "median", "min", "max", "samples", "inner"}   (ms per iteration)
    {"id", "mode", "error"}                                       (a case that failed)
The first line ({"id": "info"}) names the versions, the GPU and the settings; one line per mode
({"id": "mode-info", "mode", "info"}) gives the TF32 flags read back and a precision check that
proves the mode (relative error of a 1024³ matmul and of a 64→64 conv against float64).

Timing: CUDA events around `inner` calls, then a synchronize; a sample is that time divided by
`inner`; the median over `iters` samples is reported (after `warmup` untimed calls and a sync).
cuDNN autotuning (torch.backends.cudnn.benchmark) is on unless --no-cudnn-benchmark: the warm-up
calls run its search, so the samples time the algorithm it picked.

    python3 bench/peers/torch_cuda.py [--quick] [--cases matmul,conv,resnet,supcon]
        [--modes fp32,tf32] [--iters 20] [--inner 10] [--resnet-batches 8,32,256]
    python3 bench/peers/torch_cuda.py --device cpu --quick --iters 2 --inner 1   # logic test, no GPU

Only APIs present in both PyTorch 1.13 and 2.11 are used (TF32: the fp32_precision API where it
exists, the allow_tf32 flags before it).
"""

import argparse
import json
import math
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from torch_cpu import ResNet18, resnet18_convs, supcon_loss  # noqa: E402

QUICK_CONVS = {(64, 64, 3), (128, 256, 3), (128, 256, 1)}


def emit_line(obj):
    print(json.dumps(obj), flush=True)


def set_fp32_precision(mode):
    """PyTorch >= 2.9: sets every fp32_precision knob to `mode` (ieee or tf32); returns them read back."""
    torch.backends.fp32_precision = mode
    torch.backends.cuda.matmul.fp32_precision = mode
    torch.backends.cudnn.fp32_precision = mode
    torch.backends.cudnn.conv.fp32_precision = mode
    torch.backends.cudnn.rnn.fp32_precision = mode
    read = {}
    for name, obj in [
        ("backends", torch.backends),
        ("cuda.matmul", torch.backends.cuda.matmul),
        ("cudnn", torch.backends.cudnn),
        ("cudnn.conv", torch.backends.cudnn.conv),
    ]:
        try:
            read[f"{name}.fp32_precision"] = obj.fp32_precision
        except Exception as e:  # noqa: BLE001 - reported, not fatal
            read[f"{name}.fp32_precision"] = f"unreadable: {e}"[:80]
    return read


def set_tf32(enabled):
    """Sets TF32 for cuBLAS matmuls and cuDNN convolutions; returns the flags read back."""
    if hasattr(torch.backends, "fp32_precision"):  # PyTorch >= 2.9: the fp32_precision API
        try:
            return set_fp32_precision("tf32" if enabled else "ieee")
        except Exception as e:  # noqa: BLE001 - fall back to the legacy flags, and say so
            print(f"torch_cuda.py: fp32_precision API failed ({e}); using allow_tf32", file=sys.stderr)
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled
    if hasattr(torch, "set_float32_matmul_precision"):
        torch.set_float32_matmul_precision("high" if enabled else "highest")
    read = {}
    for name, get in [
        ("cuda.matmul.allow_tf32", lambda: torch.backends.cuda.matmul.allow_tf32),
        ("cudnn.allow_tf32", lambda: torch.backends.cudnn.allow_tf32),
        ("float32_matmul_precision", lambda: torch.get_float32_matmul_precision()),
    ]:
        try:
            read[name] = get()
        except Exception as e:  # noqa: BLE001 - reported, not fatal
            read[name] = f"unreadable: {e}"[:80]
    return read


def rel_err(out, ref):
    out = out.double().cpu()
    ref = ref.double().cpu()
    return float((out - ref).norm() / ref.norm())


def precision_check(device):
    """‖out − ref‖/‖ref‖ of a 1024³ matmul and a 64→64 3×3 conv against float64 on the CPU."""
    g = torch.Generator().manual_seed(123)
    a = torch.randn(1024, 1024, generator=g)
    b = torch.randn(1024, 1024, generator=g)
    x = torch.randn(8, 64, 32, 32, generator=g)
    w = torch.randn(64, 64, 3, 3, generator=g) / 24
    with torch.no_grad():
        mm = rel_err(a.to(device) @ b.to(device), a.double() @ b.double())
        cv = rel_err(F.conv2d(x.to(device), w.to(device), padding=1), F.conv2d(x.double(), w.double(), padding=1))
    return {"matmul_rel_err": mm, "conv_rel_err": cv}


class Timer:
    """Per-iteration ms of `inner` calls: CUDA events on a GPU, perf_counter on the CPU."""

    def __init__(self, device):
        self.cuda = device.type == "cuda"

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize()

    def sample(self, step, inner):
        if self.cuda:
            e0 = torch.cuda.Event(enable_timing=True)
            e1 = torch.cuda.Event(enable_timing=True)
            e0.record()
            for _ in range(inner):
                step()
            e1.record()
            e1.synchronize()
            return e0.elapsed_time(e1) / inner
        t0 = time.perf_counter()
        for _ in range(inner):
            step()
        return (time.perf_counter() - t0) * 1e3 / inner


def time_case(timer, step, iters, inner, warmup, budget_s, min_iters=2):
    for _ in range(warmup):
        step()
    timer.sync()
    samples = []
    start = time.perf_counter()
    for i in range(iters):
        if i >= min_iters and time.perf_counter() - start > budget_s:
            break
        samples.append(timer.sample(step, inner))
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "samples": samples,
        "inner": inner,
    }


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def gpu_info(device):
    if device.type != "cuda":
        return {"device": "cpu (logic test only)", "threads": torch.get_num_threads()}
    p = torch.cuda.get_device_properties(device)
    return {
        "device": torch.cuda.get_device_name(device),
        "capability": list(torch.cuda.get_device_capability(device)),
        "multiprocessors": p.multi_processor_count,
        "memory_gib": round(p.total_memory / 2**30, 1),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
    }


def parse_list(s):
    return [int(v) for v in s.split(",") if v.strip()]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--cases", default=None, help="comma list of matmul,conv,resnet,supcon")
    ap.add_argument("--modes", default="fp32,tf32", help="comma list of fp32 (TF32 off) and tf32")
    ap.add_argument("--iters", type=int, default=20, help="samples per case (most)")
    ap.add_argument("--inner", type=int, default=10, help="calls per sample (ResNet: scaled by 8/batch)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--resnet-batches", default=None, help="default 8,32,256 (quick: 8)")
    ap.add_argument("--no-cudnn-benchmark", action="store_true")
    args = ap.parse_args()
    groups = set(args.cases.split(",")) if args.cases else None
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in ("fp32", "tf32")]
    if bad:
        ap.error(f"unknown mode(s) {bad}: use fp32 and/or tf32")

    if args.device == "cuda" and not torch.cuda.is_available():
        msg = (
            f"CUDA is not available to PyTorch {torch.__version__} (built with CUDA {torch.version.cuda}); "
            "run on a machine with an NVIDIA GPU, or pass --device cpu for a logic test"
        )
        emit_line({"id": "info", "info": {"error": msg}})
        print(f"torch_cuda.py: {msg}", file=sys.stderr)
        sys.exit(2)

    device = torch.device(args.device)
    timer = Timer(device)
    torch.manual_seed(0)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not args.no_cudnn_benchmark
    quick = args.quick
    budget = 4.0 if quick else 10.0
    iters = min(args.iters, 3) if quick else args.iters
    batches = parse_list(args.resnet_batches) if args.resnet_batches else ([8] if quick else [8, 32, 256])

    emit_line({"id": "info", "info": {
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        **gpu_info(device),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark) if device.type == "cuda" else None,
        "timing": f"{'CUDA events' if device.type == 'cuda' else 'perf_counter'} around `inner` calls, "
                  f"median of up to {iters} samples after {args.warmup} warm-up calls",
        "modes": modes,
    }})

    def emit(mode, case_id, fn, inner, budget_s=budget):
        try:
            # Kernels alone without autograd; steps that train set fn.no_grad = False.
            with torch.no_grad() if getattr(fn, "no_grad", True) else _null():
                r = time_case(timer, fn, iters, inner, args.warmup, budget_s)
            emit_line({"id": case_id, "mode": mode, **r})
        except Exception as e:  # noqa: BLE001 - reported as a row note
            emit_line({"id": case_id, "mode": mode, "error": f"{type(e).__name__}: {e}"[:160]})
        finally:
            if device.type == "cuda":
                torch.cuda.empty_cache()

    for mode in modes:
        flags = set_tf32(mode == "tf32")
        info = {"flags": flags}
        try:
            info.update(precision_check(device))
        except Exception as e:  # noqa: BLE001
            info["precision_check_error"] = f"{type(e).__name__}: {e}"[:160]
        emit_line({"id": "mode-info", "mode": mode, "info": info})
        run_cases(mode, device, groups, quick, batches, args.inner, emit)


def run_cases(mode, device, groups, quick, batches, inner, emit):
    def randn(*shape):
        return torch.randn(*shape, device=device)

    if not groups or "matmul" in groups:
        a, b = randn(1024, 1024), randn(1024, 1024)
        emit(mode, "matmul-1024", lambda: a @ b, inner)
        for n in ([256, 1024] if quick else [256, 1024, 4096]):
            z = randn(n, 512)
            emit(mode, f"gram-{n}", lambda z=z: z @ z.T, inner)

    if not groups or "conv" in groups:
        convs = resnet18_convs(8)
        if quick:
            convs = [c for c in convs if (c["cin"], c["cout"], c["k"]) in QUICK_CONVS]
        for c in convs:
            x = randn(c["n"], c["cin"], c["h"], c["h"])
            w = randn(c["cout"], c["cin"], c["k"], c["k"]) * math.sqrt(2 / (c["cin"] * c["k"] ** 2))
            s, p = c["stride"], c["pad"]
            with torch.no_grad():
                dy = torch.randn_like(F.conv2d(x, w, stride=s, padding=p))
            base = f"conv-{c['cin']}-{c['cout']}-k{c['k']}-s{c['stride']}-h{c['h']}"
            emit(mode, f"{base}-forward", lambda x=x, w=w, s=s, p=p: F.conv2d(x, w, stride=s, padding=p), inner)
            emit(mode, f"{base}-grad-input",
                 lambda x=x, w=w, dy=dy, s=s, p=p: torch.nn.grad.conv2d_input(x.shape, w, dy, stride=s, padding=p),
                 inner)
            emit(mode, f"{base}-grad-weight",
                 lambda x=x, w=w, dy=dy, s=s, p=p: torch.nn.grad.conv2d_weight(x, w.shape, dy, stride=s, padding=p),
                 inner)

    if not groups or "resnet" in groups:
        for batch in batches:
            model = ResNet18().to(device).train()
            opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
            x = randn(batch, 3, 32, 32)
            y = torch.randint(0, 10, (batch,), device=device)

            def step(model=model, opt=opt, x=x, y=y):
                opt.zero_grad(set_to_none=False)
                F.cross_entropy(model(x), y).backward()
                opt.step()

            step.no_grad = False
            emit(mode, f"resnet18-step-b{batch}", step, resnet_inner(inner, batch), budget_s=20.0)
            del model, opt, x, y, step

    if not groups or "supcon" in groups:
        for n in ([256, 1024] if quick else [256, 1024, 4096]):
            u = randn(n, 512)
            z = (u / u.norm(dim=1, keepdim=True) * math.sqrt(10)).requires_grad_(True)
            labels = torch.randint(0, 10, (n,), device=device)

            def sc(z=z, labels=labels):
                z.grad = None
                supcon_loss(z, labels).backward()

            sc.no_grad = False
            emit(mode, f"supcon-b{n}", sc, inner)


def resnet_inner(inner, batch):
    """Calls per sample of a ResNet step: `inner` at batch 8, fewer for larger batches (as bench/run.ts)."""
    return max(1, inner * 8 // batch)


if __name__ == "__main__":
    main()
