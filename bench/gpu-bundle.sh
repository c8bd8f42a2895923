#!/usr/bin/env bash
# Run on the build machine (where npm ci and the build ran): puts what a bare CUDA machine
# lacks for bench/gpu-check.sh into .gpu/ (git-ignored): this Node binary, xz-compressed
# (~25 MB; self-contained but for glibc), and the Vulkan loader libvulkan.so.1 (from this
# machine, or Debian's libvulkan1 package unpacked). dist/, native/build/ and node_modules/
# must travel with the tree as well.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .gpu/bin .gpu/lib
node=$(readlink -f "$(command -v node)")
# Kept when already made from this binary (xz takes minutes on a small machine).
[ .gpu/bin/node.xz -nt "$node" ] || { xz -T0 -6 -c "$node" > .gpu/bin/node.xz.tmp && mv .gpu/bin/node.xz.tmp .gpu/bin/node.xz; }
# (awk reads all of ldconfig's output: an early exit would fail the pipe under pipefail)
lib=$(ldconfig -p | awk '/libvulkan\.so\.1 .*x86-64/ && !f {print $NF; f = 1}')
if [ -n "$lib" ]; then
  cp -L "$lib" .gpu/lib/libvulkan.so.1
else
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download libvulkan1 >/dev/null && dpkg-deb -x libvulkan1_*.deb x)
  cp -L "$tmp"/x/usr/lib/*/libvulkan.so.1 .gpu/lib/libvulkan.so.1
  rm -rf "$tmp"
fi
[ -e native/build/medpipe_native.node ] || echo "warning: native/build/medpipe_native.node missing (node native/build.mjs)" >&2
du -sh .gpu/bin/node.xz .gpu/lib/libvulkan.so.1
