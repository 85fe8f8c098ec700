#!/bin/sh
# Install Debian's chromium and chromium-driver for the dashboard's browser tests when missing.
# Called by .ci/run (needs root; no-op when both are present).
set -e
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium chromium-driver
