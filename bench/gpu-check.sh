#!/usr/bin/env bash
# On a GPU machine, from a built checkout (npm ci): what medpipe sees, the WebGPU numerics and
# training-parity tests on the hardware adapter, then the GPU benchmark against PyTorch.
# Output goes to stdout; nothing is written outside the checkout.
set -uo pipefail
cd "$(dirname "$0")/.."
echo "== pipeline engines"; node bin/pipeline.js engines
echo "== WebGPU tests (kernels vs cpu, ResNet/ViT demo training vs wasm)"; node --test dist/test/engine-webgpu.test.js
echo "== bench gpu"; node dist/bench/run.js gpu
