#!/usr/bin/env bash
# Debian packages the test suite talks to as real peers: mbpoll (an independent Modbus master).
# Installs only what is missing; needs root or sudo.
set -euo pipefail
packages=(mbpoll)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${missing[@]}"
