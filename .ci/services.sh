#!/usr/bin/env bash
# Services the remote-cache tests run against: a real nginx (Debian's nginx-light, whose
# http_dav_module serves the bazel-remote style GET/PUT/HEAD protocol) on loopback.
#
# Use:  eval "$(bash .ci/services.sh)"   (or `source .ci/services.sh`)
# It prints `export MEDPIPE_TEST_WEBDAV=<port>` on stdout; everything else goes to stderr.
# Idempotent: a second call finds the server answering and only prints the export again.
#
# S3: no S3-compatible server is packaged in Debian 12 (no minio/garage; radosgw needs a Ceph
# cluster), so the S3 backend is tested against the in-process server in test/remote-s3.test.ts.
set -euo pipefail

port="${MEDPIPE_WEBDAV_PORT:-18765}"
base="${MEDPIPE_WEBDAV_DIR:-/tmp/medpipe-webdav}"

log() { echo "services: $*" >&2; }

answers() { curl -sf -o /dev/null "http://127.0.0.1:$port/medpipe-alive" 2>/dev/null; }

start_nginx() {
  if ! command -v nginx >/dev/null 2>&1; then
    log "installing nginx-light"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends nginx-light curl >&2
  fi
  if ! nginx -V 2>&1 | grep -q -- --with-http_dav_module; then
    log "this nginx lacks http_dav_module"
    return 1
  fi
  mkdir -p "$base/root" "$base/tmp" "$base/logs"
  echo ok >"$base/root/medpipe-alive"
  # The workers write the uploads, so they get the tree (www-data exists once nginx is installed).
  chown -R www-data "$base/root" "$base/tmp" 2>/dev/null || true
  cat >"$base/nginx.conf" <<EOF
user www-data;
worker_processes 2;
pid $base/nginx.pid;
error_log $base/logs/error.log warn;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path $base/tmp;
  client_max_body_size 0;
  server {
    listen 127.0.0.1:$port;
    root $base/root;
    location / {
      dav_methods PUT DELETE;
      create_full_put_path on;
      dav_access user:rw group:rw all:r;
    }
  }
}
EOF
  nginx -t -q -c "$base/nginx.conf" -p "$base" >&2
  nginx -c "$base/nginx.conf" -p "$base" >&2
  for _ in $(seq 1 50); do
    answers && return 0
    sleep 0.1
  done
  log "nginx did not answer on 127.0.0.1:$port (see $base/logs/error.log)"
  return 1
}

if answers; then
  log "nginx WebDAV already up on 127.0.0.1:$port"
else
  # A stale pid file from a killed nginx would make the new one refuse to start.
  [ -f "$base/nginx.pid" ] && kill "$(cat "$base/nginx.pid")" 2>/dev/null || true
  start_nginx
  log "nginx WebDAV on 127.0.0.1:$port serving $base/root"
fi
export MEDPIPE_TEST_WEBDAV="$port"
echo "export MEDPIPE_TEST_WEBDAV=$port"
