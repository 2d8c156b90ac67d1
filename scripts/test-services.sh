#!/usr/bin/env bash
# Installs the Debian packages and starts the services the test suite uses.
# Safe to run again: it only installs or starts what is missing.
set -euo pipefail

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

need_packages=()
command -v ip >/dev/null || need_packages+=(iproute2)
command -v pg_ctlcluster >/dev/null || need_packages+=(postgresql)
command -v promtool >/dev/null || need_packages+=(prometheus)  # prometheus + promtool
command -v prometheus-node-exporter >/dev/null || need_packages+=(prometheus-node-exporter)
command -v amtool >/dev/null || need_packages+=(prometheus-alertmanager)  # alert delivery tests
[ -x /usr/bin/chromium ] || need_packages+=(chromium)  # the web UI's browser tests
command -v espeak-ng >/dev/null || need_packages+=(espeak-ng)  # synthetic calls (calls tests)
command -v sox >/dev/null || need_packages+=(sox libsox-fmt-mp3)
command -v dockerd >/dev/null || need_packages+=(docker.io)  # tests/deploy (compose stack)
command -v docker-compose >/dev/null || need_packages+=(docker-compose)
command -v debootstrap >/dev/null || need_packages+=(debootstrap)  # the image's base, offline
[ -x /usr/sbin/sshd ] || need_packages+=(openssh-server)  # tests/deploy/test_ansible.py hosts
[ -x /usr/sbin/haproxy ] || need_packages+=(haproxy)  # tests/api/test_api_replicas.py
if [ ${#need_packages[@]} -gt 0 ]; then
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_packages[@]}"
fi

if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start
    for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432

# No Docker engine runs by default here: start one (it keeps running, like PostgreSQL).
if ! docker info >/dev/null 2>&1; then
    $SUDO sh -c 'nohup dockerd >/var/log/dockerd.log 2>&1 &'
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
fi
docker info >/dev/null
