#!/usr/bin/env python3
"""PyTorch yardstick for bench/engine.ts: the same models, batch and step as medpipe's
bench (forward, cross-entropy, backward, Adam; inference in eval mode), float32, on the
CPU with torch.set_num_threads(2) unless MEDPIPE_TORCH_THREADS says otherwise.

Models are written out here (no torchvision/timm needed) with the same architecture as
torchvision's resnet50 / timm's deit_small_patch16_224 and medpipe's demo models.

usage: torch_step.py [--steps N] [--device cpu|cuda] [--precision fp32|amp] label:batch ...
labels as in bench/engine.ts; prints one JSON line per model: {"label", "train", "infer"} in
images/s (medians).

On cuda (bench/gpu.ts): fp32 has TF32 off (the like-for-like anchor for medpipe's fp32
WebGPU kernels); amp is torch.autocast float16 with a GradScaler (what users run). Timings
end with torch.cuda.synchronize(); cudnn.benchmark is on, as in a tuned training script.
"""
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

NUM_CLASSES = 10


class Basic(nn.Module):
    expansion = 1

    def __init__(self, inp, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.down = None
        if stride != 1 or inp != planes:
            self.down = nn.Sequential(nn.Conv2d(inp, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.down is None else self.down(x)))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inp, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.down = None
        if stride != 1 or inp != planes * 4:
            self.down = nn.Sequential(nn.Conv2d(inp, planes * 4, 1, stride, bias=False), nn.BatchNorm2d(planes * 4))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.down is None else self.down(x)))


class ResNet(nn.Module):
    def __init__(self, block, layers, widths, stem):
        super().__init__()
        self.conv1 = nn.Conv2d(3, stem, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        blocks = []
        inp = stem
        for s, (n, w) in enumerate(zip(layers, widths)):
            for b in range(n):
                stride = 2 if b == 0 and s > 0 else 1
                blocks.append(block(inp, w, stride))
                inp = w * block.expansion
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(inp, NUM_CLASSES)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        x = self.blocks(x)
        return self.fc(x.mean((2, 3)))


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.fc2 = nn.Linear(4 * dim, dim)

    def forward(self, x):
        B, T, D = x.shape
        H = self.heads
        qkv = self.qkv(self.norm1(x)).reshape(B, T, 3, H, D // H).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = ((q * (D // H) ** -0.5) @ k.transpose(-2, -1)).softmax(-1)
        o = (att @ v).transpose(1, 2).reshape(B, T, D)
        x = x + self.proj(o)
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class ViT(nn.Module):
    def __init__(self, img, patch, dim, depth, heads):
        super().__init__()
        self.patch = nn.Conv2d(3, dim, patch, patch)
        n = (img // patch) ** 2
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, n + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*[Block(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, NUM_CLASSES)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
        x = self.blocks(x)
        return self.head(self.norm(x[:, 0]))


MODELS = {
    'resnet50@224': (lambda: ResNet(Bottleneck, [3, 4, 6, 3], [64, 128, 256, 512], 64), 224),
    'deit_s@224': (lambda: ViT(224, 16, 384, 12, 6), 224),
    'resnet_demo@64': (lambda: ResNet(Basic, [1, 1, 1, 1], [16, 32, 64, 128], 16), 64),
    'vit_demo@64': (lambda: ViT(64, 8, 192, 4, 3), 64),
    'resnet_demo@48': (lambda: ResNet(Basic, [1, 1, 1, 1], [16, 32, 64, 128], 16), 48),
    'vit_demo@48': (lambda: ViT(48, 8, 192, 4, 3), 48),
}


def env_seconds(name, fallback):
    # As bench/engine.ts envSeconds: a finite number >= 0, else the fallback.
    try:
        f = float(os.environ.get(name, ''))
    except ValueError:
        return fallback
    return f if math.isfinite(f) and f >= 0 else fallback


def warm_up(f, seconds, at_least, sync):
    t0 = time.perf_counter()
    n = 0
    while n < at_least or time.perf_counter() - t0 < seconds:
        f()
        sync()
        n += 1


def timed_runs(f, batch, n, seconds, sync):
    # As bench/engine.ts timedRuns: at least n calls and at least `seconds` of them.
    out = []
    start = time.perf_counter()
    while len(out) < n or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        f()
        sync()
        out.append(batch / (time.perf_counter() - t0))
    return out


def bench(label, batch, steps, device='cpu', precision='fp32'):
    make, px = MODELS[label]
    torch.manual_seed(0)
    model = make().to(device)
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    x = torch.randn(batch, 3, px, px, device=device)
    y = torch.arange(batch, device=device) % NUM_CLASSES
    cuda = device == 'cuda'
    amp = precision == 'amp'
    # torch.amp.GradScaler('cuda') since 2.3; torch.cuda.amp's is deprecated there.
    grad_scaler = getattr(getattr(torch, 'amp', None), 'GradScaler', None)
    scaler = (grad_scaler('cuda') if grad_scaler else torch.cuda.amp.GradScaler()) if amp else None

    def sync():
        if cuda:
            torch.cuda.synchronize()

    def step():
        opt.zero_grad(set_to_none=True)
        if amp:
            with torch.autocast('cuda', dtype=torch.float16):
                loss = F.cross_entropy(model(x), y)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            F.cross_entropy(model(x), y).backward()
            opt.step()

    def infer():
        if amp:
            with torch.autocast('cuda', dtype=torch.float16):
                model(x)
        else:
            model(x)

    # The same warm-up as medpipe's side of the bench (bench/engine.ts): MEDPIPE_BENCH_WARMUP_S
    # seconds of steps, default 2, at least one (three on cuda), so neither side is timed cold.
    warm = env_seconds('MEDPIPE_BENCH_WARMUP_S', 2.0)
    model.train()
    warm_up(step, warm, 3 if cuda else 1, sync)
    timed = env_seconds('MEDPIPE_BENCH_TIMED_S', 1.0)
    train = timed_runs(step, batch, steps, timed, sync)
    model.eval()
    with torch.no_grad():
        warm_up(infer, warm / 4, 1, sync)
        infer_runs = timed_runs(infer, batch, max(3, steps), timed, sync)
    out = {'label': label, 'train': statistics.median(train), 'infer': statistics.median(infer_runs),
           'trainRuns': train, 'threads': torch.get_num_threads(), 'torch': torch.__version__,
           'device': device, 'precision': precision}
    if cuda:
        out['gpu'] = torch.cuda.get_device_name(0)
    return out


def main(argv):
    torch.set_num_threads(int(os.environ.get('MEDPIPE_TORCH_THREADS', '2')))
    steps = 3
    device = 'cpu'
    precision = 'fp32'
    jobs = []
    i = 0
    while i < len(argv):
        if argv[i] in ('--steps', '--device', '--precision'):
            if argv[i] == '--steps':
                steps = int(argv[i + 1])
            elif argv[i] == '--device':
                device = argv[i + 1]
            else:
                precision = argv[i + 1]
            i += 2
            continue
        label, _, batch = argv[i].partition(':')
        jobs.append((label, int(batch or 8)))
        i += 1
    if device == 'cuda':
        if not torch.cuda.is_available():
            print(json.dumps({'error': 'torch.cuda.is_available() is False'}))
            return
        # fp32 means fp32: no TF32 tensor-core matmuls or convolutions.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
    for label, batch in jobs:
        if label not in MODELS:
            print(json.dumps({'label': label, 'error': 'unknown model'}))
            continue
        print(json.dumps(bench(label, batch, steps, device, precision)), flush=True)


if __name__ == '__main__':
    main(sys.argv[1:])
