#!/bin/sh
# Everything the test suite needs, on a fresh machine: the package with its test extra,
# and Debian's headless Chromium + ChromeDriver for the real-browser test of the web UI.
# Part of the README's test command; safe to run again (skips what is there).
set -e
cd "$(dirname "$0")/.."
# llama.cpp compiles for a portable x86-64/arm64 baseline, not for this CPU's every
# extension: a wheel built with GGML_NATIVE (the default) crashed with "Illegal instruction"
# on a VM whose CPU advertises AMX/AVX-512 it cannot run, and pip caches that wheel.
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}"
python -m pip install -c constraints.txt -e ".[test]"
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    echo "chromium and chromedriver: already installed"
elif command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" != "0" ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; fi
    fi
    if [ "$(id -u)" = "0" ] || [ -n "$SUDO" ]; then
        echo "installing chromium and chromium-driver with apt-get..."
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
    else
        echo "NOTE: chromium/chromedriver missing and no root or sudo: the browser test will be skipped" >&2
    fi
else
    echo "NOTE: chromium/chromedriver missing and no apt-get: the browser test will be skipped" >&2
fi
