#!/usr/bin/env bash
# Installs the Debian packages deepc needs to build and test. Idempotent: packages
# already installed are not fetched again. Uses sudo when not run as root.
set -euo pipefail

PKGS=(
  build-essential        # gcc (C11, OpenMP), make
  pkg-config
  libcjson-dev           # JSON: config.json, safetensors headers, tokenizer.json
  libpcre2-dev           # Unicode regexes of the tokenizer's pre-tokenizer
  libopenblas-openmp-dev # f32 GEMM where it measures faster than our kernels
  python3-torch          # tests/ref: the PyTorch reference that writes golden numbers
  python3-numpy
  gnuplot-nox            # deepc plot: loss curves to PNG
  libedit-dev            # deepc chat: line editing and history (optional at build time)
  libmicrohttpd-dev      # deepc serve: the HTTP server
  chromium               # tests/server: the web chat in a headless browser (playwright-core)
  wrk                    # tests/server: the load test
  libopenmpi-dev         # make MPI=1: deepc across processes (src/dist/)
  openmpi-bin            # mpirun: the MPI tests
  clang                  # make fuzz (CI runs it): libFuzzer harnesses
  libclang-rt-14-dev     # make fuzz: clang's libFuzzer and sanitizer runtimes
)
# tests/server runs the official openai npm client with Node.js; a node
# already on the machine (e.g. a newer one from elsewhere) is kept
command -v node >/dev/null || PKGS+=(nodejs)
command -v npm >/dev/null || PKGS+=(npm)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#PKGS[@]} packages present"
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
