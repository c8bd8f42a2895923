#!/usr/bin/env bash
# On a GPU machine, from a built checkout (npm ci && npm run build, or a tree carried from a
# build machine with dist/, native/build/ and node_modules/): what medpipe sees, the WebGPU
# numerics, limits and stage tests on the hardware adapter, then the GPU benchmark against
# PyTorch with a per-kernel GPU-time profile of a medpipe training step, and an A/B of
# medpipe's conv-gradient kernels against tfjs-webgpu's on this GPU.
#
# A bare CUDA machine has the NVIDIA driver (whose Vulkan driver is libGLX_nvidia.so.0) but
# often neither Node nor the Vulkan loader: bench/gpu-bundle.sh, run on the build machine,
# puts both in .gpu/ and this script uses them when the system has none. When the driver's
# Vulkan manifest (nvidia_icd.json) is missing, as in containers started without the
# `graphics` driver capability, one is written to .gpu/icd/ pointing at the driver's library.
#
#   bench/gpu-check.sh            everything (the stage test takes minutes)
#   GPU_CHECK_QUICK=1 bench/gpu-check.sh   kernels + limits + bench only
#
# Output goes to stdout; nothing is written outside the checkout. MEDPIPE_BENCH_PYTHON picks
# the python whose torch has CUDA (default: the first of python3, python with one).
set -uo pipefail
cd "$(dirname "$0")/.."
here=$(pwd)

say() { echo "== $*"; }

# Node: the system's, else the bundled one.
if ! command -v node >/dev/null 2>&1; then
  if [ -x .gpu/bin/node ]; then export PATH="$here/.gpu/bin:$PATH"
  elif [ -f .gpu/bin/node.xz ]; then xz -dkf .gpu/bin/node.xz && chmod +x .gpu/bin/node && export PATH="$here/.gpu/bin:$PATH"
  else echo "no node on PATH and none in .gpu/ (run bench/gpu-bundle.sh on the build machine)"; exit 1; fi
fi
say "node $(node --version) ($(command -v node))"

# The Vulkan loader: the system's, else the bundled one.
# (grep without -q: an early exit would fail the pipe under pipefail)
has_lib() { ldconfig -p 2>/dev/null | grep -c "$1" >/dev/null; }
if ! has_lib 'libvulkan\.so\.1 '; then
  if [ -e .gpu/lib/libvulkan.so.1 ]; then
    export LD_LIBRARY_PATH="$here/.gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    say "Vulkan loader: .gpu/lib/libvulkan.so.1 (none installed)"
  else
    say "no Vulkan loader (libvulkan.so.1): install libvulkan1, or run bench/gpu-bundle.sh on the build machine"
  fi
else
  say "Vulkan loader: $(ldconfig -p | grep 'libvulkan\.so\.1 ' | sed -n '1s/.*=> //p')"
fi

# The NVIDIA Vulkan driver's manifest.
if command -v nvidia-smi >/dev/null 2>&1; then
  say "GPUs"; nvidia-smi --query-gpu=index,name,driver_version,memory.total,pci.bus_id --format=csv,noheader
  icd=""
  for d in ${VK_ICD_FILENAMES:+$(dirname "${VK_ICD_FILENAMES%%:*}")} /etc/vulkan/icd.d /usr/share/vulkan/icd.d /usr/local/share/vulkan/icd.d; do
    for f in "$d"/nvidia*.json; do [ -f "$f" ] && icd="$f" && break 2; done
  done
  if [ -n "$icd" ]; then say "NVIDIA Vulkan manifest: $icd"
  elif has_lib 'libGLX_nvidia\.so\.0 ' || ls /usr/lib/x86_64-linux-gnu/libGLX_nvidia.so.0 >/dev/null 2>&1; then
    mkdir -p .gpu/icd
    api=$(nvidia-smi -q 2>/dev/null | awk -F': ' '/Vulkan/ && !f {print $2; f = 1}')
    printf '{"file_format_version": "1.0.1", "ICD": {"library_path": "libGLX_nvidia.so.0", "api_version": "%s"}}\n' "${api:-1.3.0}" > .gpu/icd/nvidia_icd.json
    export VK_ICD_FILENAMES="$here/.gpu/icd/nvidia_icd.json"
    say "NVIDIA Vulkan manifest missing: wrote .gpu/icd/nvidia_icd.json (driver library libGLX_nvidia.so.0)"
  else
    say "the NVIDIA driver's Vulkan library (libGLX_nvidia.so.0) is not installed: in a container, start it with NVIDIA_DRIVER_CAPABILITIES=all (or graphics,compute,utility)"
  fi
fi

[ -f dist/bench/gpu.js ] || { echo "dist/ missing: run npm ci && npm run build (or carry dist/ from the build machine)"; exit 1; }
[ -e native/build/medpipe_native.node ] || say "native addon not built (node native/build.mjs): dataSync on webgpu will throw"

say "pipeline engines"; node bin/pipeline.js engines
status=0
tests="dist/test/engine-webgpu.test.js dist/test/engine-webgpu-limits.test.js"
[ "${GPU_CHECK_QUICK:-0}" = 1 ] || tests="$tests dist/test/engine-webgpu-stages.test.js"
say "WebGPU tests: kernels vs cpu, demo training vs wasm, limits, stages"
# shellcheck disable=SC2086
node --test --test-concurrency=1 $tests || status=1

if [ -z "${MEDPIPE_BENCH_PYTHON:-}" ]; then
  for py in python3 python; do
    if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
      export MEDPIPE_BENCH_PYTHON=$(command -v "$py"); break
    fi
  done
fi
say "PyTorch: ${MEDPIPE_BENCH_PYTHON:-none with CUDA found (rows without it)}"
say "bench gpu"; node dist/bench/run.js gpu || status=1
# Which conv-gradient kernels to keep on this GPU: medpipe's tiled GEMMs against tfjs-webgpu's
# own (MEDPIPE_WEBGPU_KERNELS=-Name leaves one of medpipe's out if it loses here).
for k in Conv2DBackpropInput Conv2DBackpropFilter; do
  say "A/B $k: tfjs-webgpu's (A) vs medpipe's (B), a ResNet50@224 step at batch 16"
  node dist/bench/webgpu-ab.js resnet50@224 16 2 "$k" || status=1
done
exit $status
