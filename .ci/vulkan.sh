#!/usr/bin/env bash
# A software Vulkan driver for the WebGPU tests (test/engine-webgpu.test.ts): Mesa's lavapipe
# from Debian's mesa-vulkan-drivers. Bookworm's own 22.3 is refused by Dawn (it lacks
# shaderUniform*ArrayDynamicIndexing), so it comes from bookworm-backports (25.x).
#
# The backports source is derived from this machine's own Debian sources (deb822 in
# /etc/apt/sources.list.d/debian.sources, or one-line /etc/apt/sources.list): the entries of
# the release's main suite, copied with only the suite changed. No mirror is named here.
# Never fails: without the driver the WebGPU tests skip and say why.
set -uo pipefail

log() { echo "vulkan: $*" >&2; }

if [ -e /usr/share/vulkan/icd.d/lvp_icd.json ] && dpkg --compare-versions "$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || echo 0)" ge 24; then
  log "lavapipe already installed"; exit 0
fi

. /etc/os-release
codename="${VERSION_CODENAME:-}"
if [ -z "$codename" ]; then log "no VERSION_CODENAME in /etc/os-release; skipping"; exit 0; fi
target=/etc/apt/sources.list.d/medpipe-${codename}-backports.sources
if ! grep -rqs -- "${codename}-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    # deb822 stanzas whose Suites include exactly the codename; Suites replaced.
    awk -v c="$codename" 'BEGIN { RS = ""; ORS = "\n\n" }
      { n = split($0, L, "\n"); keep = 0
        for (i = 1; i <= n; i++) if (L[i] ~ /^Suites:/) { m = split(L[i], S, /[ \t]+/); for (j = 2; j <= m; j++) if (S[j] == c) keep = 1 }
        if (!keep) next
        out = ""
        for (i = 1; i <= n; i++) out = out (L[i] ~ /^Suites:/ ? "Suites: " c "-backports" : L[i]) "\n"
        printf "%s\n", out }' /etc/apt/sources.list.d/debian.sources > "$target"
  elif [ -f /etc/apt/sources.list ]; then
    target=/etc/apt/sources.list.d/medpipe-${codename}-backports.list
    awk -v c="$codename" '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i == c) { $i = c "-backports"; print; break } }' /etc/apt/sources.list > "$target"
  fi
  if [ ! -s "$target" ]; then log "could not derive a ${codename}-backports source; skipping"; rm -f "$target"; exit 0; fi
  log "added $(grep -c -E '^(Suites|deb) ' "$target") ${codename}-backports source(s) in $target"
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2 || { log "apt-get update failed; skipping"; exit 0; }
if apt-get install -y -qq --no-install-recommends -t "${codename}-backports" mesa-vulkan-drivers libvulkan1 >&2; then
  log "installed mesa-vulkan-drivers $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers)"
else
  log "mesa-vulkan-drivers from ${codename}-backports could not be installed; WebGPU tests will skip"
fi
exit 0
