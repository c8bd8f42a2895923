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
#
# Orthanc (Debian's orthanc + orthanc-dicomweb) for the dicomweb importer: prints
# `export MEDPIPE_TEST_ORTHANC=http://127.0.0.1:<port>`.
#
# SLURM: a one-machine cluster from Debian's slurm-wlm (slurmctld + slurmd on loopback, munge
# auth, no cgroups, no accounting daemon) for test/slurm-*.test.ts; prints
# `export MEDPIPE_TEST_SLURM=1` once `sinfo` shows the node idle. Either service failing is a
# warning on stderr and a missing export, never a failed script: the tests skip what is absent.
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
  echo "export MEDPIPE_TEST_WEBDAV=$port"
else
  # A stale pid file from a killed nginx would make the new one refuse to start.
  [ -f "$base/nginx.pid" ] && kill "$(cat "$base/nginx.pid")" 2>/dev/null || true
  if (start_nginx); then
    log "nginx WebDAV on 127.0.0.1:$port serving $base/root"
    echo "export MEDPIPE_TEST_WEBDAV=$port"
  else
    log "warning: nginx WebDAV did not start; the WebDAV tests run against in-process servers only"
  fi
fi

# ---- SLURM: one node on loopback -------------------------------------------------------------
slurm_dir="${MEDPIPE_SLURM_DIR:-/tmp/medpipe-slurm}"
slurm_node="${MEDPIPE_SLURM_NODE:-medpipe-node}"

slurm_idle() { sinfo -h -n "$slurm_node" -o %t 2>/dev/null | grep -Eq '^(idle|mix|alloc)'; }
munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

install_slurm() {
  command -v slurmctld >/dev/null 2>&1 && command -v slurmd >/dev/null 2>&1 && command -v sbatch >/dev/null 2>&1 && command -v munged >/dev/null 2>&1 && return 0
  log "installing slurm-wlm and munge"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  # Their postinst asks invoke-rc.d to start the daemons; without systemd that is refused
  # (harmless): they are started below, by hand.
  apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >&2
}

start_munge() {
  # The package generates /etc/munge/munge.key; make one if it is missing.
  if [ ! -s /etc/munge/munge.key ]; then
    mungekey --create --keyfile=/etc/munge/munge.key >&2
    chown munge:munge /etc/munge/munge.key
    chmod 600 /etc/munge/munge.key
  fi
  munge_ok && return 0
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  rm -f /run/munge/munge.socket.2 /run/munge/munged.pid
  runuser -u munge -- /usr/sbin/munged >&2
  for _ in $(seq 1 50); do
    munge_ok && return 0
    sleep 0.1
  done
  log "munged does not answer"
  return 1
}

write_slurm_conf() {
  local host cpus mem
  host="$(hostname -s)"
  cpus="$(nproc)"
  # Below the machine's memory: a node that reports less than its RealMemory is drained.
  mem=$(($(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) * 9 / 10))
  mkdir -p "$slurm_dir/state" "$slurm_dir/spool" "$slurm_dir/log"
  # Jobs run as root (the CI user). No cgroups (containers rarely have a writable cgroupfs):
  # processes are tracked through /proc and tasks are not confined. No slurmdbd, so no sacct:
  # finished jobs stay visible to squeue/scontrol for MinJobAge seconds.
  cat >"$slurm_dir/slurm.conf" <<CONF
ClusterName=medpipe
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
SwitchType=switch/none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$slurm_dir/state
SlurmdSpoolDir=$slurm_dir/spool
SlurmctldPidFile=$slurm_dir/slurmctld.pid
SlurmdPidFile=$slurm_dir/slurmd.pid
SlurmctldLogFile=$slurm_dir/log/slurmctld.log
SlurmdLogFile=$slurm_dir/log/slurmd.log
ReturnToService=2
MinJobAge=600
KillWait=5
InactiveLimit=0
NodeName=$slurm_node NodeHostname=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
  # The client tools (sbatch, squeue, ...) read /etc/slurm/slurm.conf: point it at ours unless
  # the machine has a real one.
  if [ ! -e /etc/slurm/slurm.conf ] || [ -L /etc/slurm/slurm.conf ]; then
    mkdir -p /etc/slurm
    ln -sfn "$slurm_dir/slurm.conf" /etc/slurm/slurm.conf
  fi
}

start_slurm() {
  install_slurm || return 1
  start_munge || return 1
  write_slurm_conf
  for d in slurmctld slurmd; do
    if [ -f "$slurm_dir/$d.pid" ]; then kill "$(cat "$slurm_dir/$d.pid")" 2>/dev/null || true; fi
  done
  sleep 0.3
  slurmctld -f "$slurm_dir/slurm.conf" >&2 || { log "slurmctld did not start (see $slurm_dir/log/slurmctld.log)"; return 1; }
  slurmd -f "$slurm_dir/slurm.conf" -N "$slurm_node" >&2 || { log "slurmd did not start (see $slurm_dir/log/slurmd.log)"; return 1; }
  for i in $(seq 1 150); do
    slurm_idle && return 0
    # A node left DOWN by an unclean stop comes back once told to.
    [ $((i % 10)) -eq 0 ] && scontrol update nodename="$slurm_node" state=resume >/dev/null 2>&1
    sleep 0.2
  done
  log "the SLURM node did not become idle: $(sinfo 2>&1 | tr '\n' ' ') (see $slurm_dir/log/)"
  return 1
}

if command -v sinfo >/dev/null 2>&1 && slurm_idle; then
  log "SLURM already up: $(sinfo -h -o '%P %D %t' 2>/dev/null | head -1)"
  echo "export MEDPIPE_TEST_SLURM=1"
elif (start_slurm); then
  log "SLURM up: node $slurm_node on 127.0.0.1, config $slurm_dir/slurm.conf"
  echo "export MEDPIPE_TEST_SLURM=1"
else
  log "warning: SLURM did not start; the SLURM tests will skip"
fi

# ---- Orthanc with its DICOMweb plugin, on loopback (the dicomweb importer's tests) ----------
# Empty at start: the tests upload their own synthetic mammograms (REST POST /instances).
orthanc_port="${MEDPIPE_ORTHANC_PORT:-18042}"
orthanc_dir="${MEDPIPE_ORTHANC_DIR:-/tmp/medpipe-orthanc}"
orthanc_plugin=/usr/share/orthanc/plugins/libOrthancDicomWeb.so

orthanc_answers() { curl -sf -o /dev/null "http://127.0.0.1:$orthanc_port/dicom-web/studies" 2>/dev/null; }

start_orthanc() {
  if ! command -v Orthanc >/dev/null 2>&1 || [ ! -e "$orthanc_plugin" ]; then
    log "installing orthanc and orthanc-dicomweb"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    # Its postinst asks invoke-rc.d to start the system service; without systemd that is
    # refused (harmless): a private instance is started below.
    apt-get install -y -qq --no-install-recommends orthanc orthanc-dicomweb curl >&2
  fi
  mkdir -p "$orthanc_dir/db"
  # RemoteAccessAllowed false: Orthanc answers loopback clients only. No DICOM (C-STORE) port.
  cat >"$orthanc_dir/orthanc.json" <<CONF
{
  "Name": "medpipe-test",
  "StorageDirectory": "$orthanc_dir/db",
  "IndexDirectory": "$orthanc_dir/db",
  "HttpPort": $orthanc_port,
  "DicomServerEnabled": false,
  "RemoteAccessAllowed": false,
  "AuthenticationEnabled": false,
  "Plugins": ["$orthanc_plugin"],
  "DicomWeb": { "Enable": true, "Root": "/dicom-web/" }
}
CONF
  [ -f "$orthanc_dir/orthanc.pid" ] && kill "$(cat "$orthanc_dir/orthanc.pid")" 2>/dev/null || true
  nohup Orthanc "$orthanc_dir/orthanc.json" >"$orthanc_dir/orthanc.log" 2>&1 &
  echo $! >"$orthanc_dir/orthanc.pid"
  for _ in $(seq 1 100); do
    orthanc_answers && return 0
    sleep 0.1
  done
  log "Orthanc did not answer on 127.0.0.1:$orthanc_port (see $orthanc_dir/orthanc.log)"
  return 1
}

if orthanc_answers; then
  log "Orthanc DICOMweb already up on 127.0.0.1:$orthanc_port"
  echo "export MEDPIPE_TEST_ORTHANC=http://127.0.0.1:$orthanc_port"
elif (start_orthanc); then
  log "Orthanc DICOMweb on 127.0.0.1:$orthanc_port"
  echo "export MEDPIPE_TEST_ORTHANC=http://127.0.0.1:$orthanc_port"
else
  log "warning: Orthanc did not start; the DICOMweb tests against it will skip"
fi
