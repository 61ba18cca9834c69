#!/usr/bin/env bash
# Debian packages the tests use as real peers: mbpoll (an independent Modbus master), chromium
# (the HMI is tested in a real headless browser), a CJK font so the HMI and the carton labels
# render their Chinese (grading/trace/labels.py), zbar-tools (zbarimg reads the labels' QR codes
# back in tests) and prometheus (its server scrapes `gradeline run` in a test; promtool checks
# /metrics and the alert rules).
# Installs only what is missing; needs root or sudo.
set -euo pipefail
packages=(mbpoll chromium fonts-wqy-microhei zbar-tools prometheus)
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
