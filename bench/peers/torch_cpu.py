"""PyTorch CPU peer of bench/run.ts: the same cases (same ids, shapes and FLOP conventions) on the
CPU with 2 threads, one JSON line per case on stdout: {"id", "median", "min", "max", "samples"} in
ms per iteration. The first line ({"id": "info"}) names the versions, threads and BLAS.

Run with Debian's python (apt-get install python3-torch libopenblas0-pthread):
    /usr/bin/python3 bench/peers/torch_cpu.py [--quick] [--cases matmul,conv,resnet,supcon]
bench/run.ts --torch spawns it with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset.
"""

import argparse
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

THREADS = 2


def summarize(samples):
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "samples": samples,
    }


def time_case(step, iters, warmup=1, budget_s=10.0, min_iters=2):
    """Per-iteration ms: each sample is one step (CPU work is synchronous: no readback needed)."""
    for _ in range(warmup):
        step()
    samples = []
    start = time.perf_counter()
    for i in range(iters):
        if i >= min_iters and time.perf_counter() - start > budget_s:
            break
        t0 = time.perf_counter()
        step()
        samples.append((time.perf_counter() - t0) * 1e3)
    return summarize(samples)


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def blas_info():
    info = {}
    try:
        with open("/proc/self/maps") as f:
            libs = sorted({line.split()[-1] for line in f if "blas" in line.lower() and "/" in line})
        info["blas_libs"] = [os.path.realpath(p) for p in libs]
    except OSError:
        pass
    try:
        from threadpoolctl import threadpool_info  # optional

        info["threadpools"] = [
            {k: d.get(k) for k in ("internal_api", "num_threads", "version", "architecture")}
            for d in threadpool_info()
        ]
    except Exception:  # noqa: BLE001 - optional dependency
        pass
    return info


# ---------------------------------------------------------------------------------------------
# ResNet-18 for 32x32 inputs (the paper's encoder; see bench/peers/tfjs.ts)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (self.shortcut(x) if self.shortcut is not None else x))


class ResNet18(nn.Module):
    def __init__(self, width=64, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        blocks = []
        cin = width
        for stage, cout in enumerate([width, 2 * width, 4 * width, 8 * width]):
            for b in range(2):
                stride = 2 if stage > 0 and b == 0 else 1
                blocks.append(BasicBlock(cin, cout, stride))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(8 * width, classes, bias=False)

    def forward(self, x):
        h = self.blocks(F.relu(self.bn1(self.conv1(x))))
        return self.fc(h.mean(dim=(2, 3)))


def resnet18_convs(n, width=64):
    """Distinct convolutions of ResNet-18 in network order (matches bench/harness.ts resnet18Convs)."""
    out = []
    seen = {}

    def conv(cin, cout, h, k, stride):
        key = (cin, cout, h, k, stride)
        if key in seen:
            seen[key]["count"] += 1
            return
        c = dict(n=n, cin=cin, cout=cout, h=h, k=k, stride=stride, pad=1 if k == 3 else 0, count=1)
        seen[key] = c
        out.append(c)

    conv(3, width, 32, 3, 1)
    cin, h = width, 32
    for stage, cout in enumerate([width, 2 * width, 4 * width, 8 * width]):
        for b in range(2):
            stride = 2 if stage > 0 and b == 0 else 1
            conv(cin, cout, h, 3, stride)
            h_out = h // 2 if stride == 2 else h
            conv(cout, cout, h_out, 3, 1)
            if stride != 1 or cin != cout:
                conv(cin, cout, h, 1, stride)
            cin, h = cout, h_out
    return out


def supcon_loss(z, labels):
    """FORMULAS.md Eq. 6: sum over anchors; masked log-sum-exp over k != i; 0 without positives."""
    b = z.shape[0]
    gram = z @ z.T
    eye = torch.eye(b, dtype=torch.bool, device=z.device)
    lse = torch.logsumexp(gram.masked_fill(eye, float("-inf")), dim=1)
    pos = ((labels[:, None] == labels[None, :]) & ~eye).to(z.dtype)
    npos = pos.sum(1)
    per = ((pos * gram).sum(1) - npos * lse) / npos.clamp(min=1)
    return -per.sum()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--cases", default=None)
    args = ap.parse_args()
    groups = set(args.cases.split(",")) if args.cases else None
    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    quick = args.quick
    budget = 4.0 if quick else 10.0
    it = (lambda n: min(n, 3)) if quick else (lambda n: n)

    print(json.dumps({"id": "info", "info": {
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "threads": torch.get_num_threads(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        **blas_info(),
    }}), flush=True)

    def emit(case_id, fn, iters, budget_s=budget):
        try:
            # Kernels alone without autograd; steps that train set fn.no_grad = False.
            with torch.no_grad() if getattr(fn, "no_grad", True) else _null():
                r = time_case(fn, iters, budget_s=budget_s)
            print(json.dumps({"id": case_id, **r}), flush=True)
        except Exception as e:  # noqa: BLE001 - reported as a row note
            print(json.dumps({"id": case_id, "error": f"{type(e).__name__}: {e}"[:160]}), flush=True)

    if not groups or "matmul" in groups:
        a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
        emit("matmul-1024", lambda: a @ b, it(5))
        for n in ([256, 1024] if quick else [256, 1024, 4096]):
            z = torch.randn(n, 512)
            emit(f"gram-{n}", lambda z=z: z @ z.T, it(3 if n >= 4096 else 5))

    if not groups or "conv" in groups:
        convs = resnet18_convs(8)
        if quick:
            convs = [c for c in convs if (c["cin"], c["cout"], c["k"]) in {(64, 64, 3), (128, 256, 3), (128, 256, 1)}]
        for c in convs:
            x = torch.randn(c["n"], c["cin"], c["h"], c["h"])
            w = torch.randn(c["cout"], c["cin"], c["k"], c["k"]) * math.sqrt(2 / (c["cin"] * c["k"] ** 2))
            y = F.conv2d(x, w, stride=c["stride"], padding=c["pad"])
            dy = torch.randn_like(y)
            base = f"conv-{c['cin']}-{c['cout']}-k{c['k']}-s{c['stride']}-h{c['h']}"
            s, p = c["stride"], c["pad"]
            emit(f"{base}-forward", lambda x=x, w=w, s=s, p=p: F.conv2d(x, w, stride=s, padding=p), it(5))
            emit(f"{base}-grad-input",
                 lambda x=x, w=w, dy=dy, s=s, p=p: torch.nn.grad.conv2d_input(x.shape, w, dy, stride=s, padding=p),
                 it(5))
            emit(f"{base}-grad-weight",
                 lambda x=x, w=w, dy=dy, s=s, p=p: torch.nn.grad.conv2d_weight(x, w.shape, dy, stride=s, padding=p),
                 it(5))

    if not groups or "resnet" in groups:
        for batch in ([8] if quick else [8, 32]):
            model = ResNet18().train()
            opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
            x = torch.randn(batch, 3, 32, 32)
            y = torch.randint(0, 10, (batch,))

            def step(model=model, opt=opt, x=x, y=y):
                opt.zero_grad(set_to_none=False)
                F.cross_entropy(model(x), y).backward()
                opt.step()

            step.no_grad = False
            emit(f"resnet18-step-b{batch}", step, it(5 if batch == 8 else 3), budget_s=20.0)

    if not groups or "supcon" in groups:
        for n in ([256, 1024] if quick else [256, 1024, 4096]):
            u = torch.randn(n, 512)
            z = (u / u.norm(dim=1, keepdim=True) * math.sqrt(10)).requires_grad_(True)
            labels = torch.randint(0, 10, (n,))

            def sc(z=z, labels=labels):
                z.grad = None
                supcon_loss(z, labels).backward()

            sc.no_grad = False
            emit(f"supcon-b{n}", sc, it(3 if n >= 4096 else 5))


if __name__ == "__main__":
    main()
