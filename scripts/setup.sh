#!/usr/bin/env bash
# Installs every Debian package dself needs (only what is missing, so a second run is quick).
# Run as root, or as a user with sudo. Usage: scripts/setup.sh
set -euo pipefail

packages=(
  # build
  cmake g++ ninja-build pkg-config make
  # download, decode, encode
  yt-dlp ffmpeg libavformat-dev libavcodec-dev libavutil-dev libswscale-dev libswresample-dev
  # catalog, hashing, CLI, JSON, logs; PCRE2 for the tokenizers' \p{L} patterns
  libsqlite3-dev libcurl4-openssl-dev libpcre2-dev zlib1g-dev libxxhash-dev libcli11-dev nlohmann-json3-dev libspdlog-dev libfmt-dev
  # images and faces
  libopencv-dev libdlib-dev libdlib-data
  # phonemes and the fallback voice
  libespeak-ng-dev espeak-ng-data
  # training (libtorch) and the vocoder (SPTK's library; its command-line tools check it in tests)
  libtorch-dev libsptk-dev sptk
  # speech recognition: PocketSphinx with its US English model; real read speech for evaluation
  libpocketsphinx-dev libsphinxbase-dev pocketsphinx-en-us pocketsphinx-testdata
  # the persona's word meanings: WordNet 3.0 data (its C library's header too)
  wordnet-base wordnet-dev
  # the server: RESTinio on Asio
  librestinio-dev libasio-dev libhttp-parser-dev
  # the web UI's end-to-end tests drive Debian's Chromium
  chromium
  # the sample person: voices and public-domain portraits (the hard sample's guest: skimage's astronaut.png)
  flite1-dev python-matplotlib-data python3-skimage
  # tests: GoogleTest, Google Benchmark, a loopback HTTP server for yt-dlp
  libgtest-dev libgmock-dev libbenchmark-dev python3
  # a real video without a face (vtest.avi), for bad-input tests; Megamind.avi (two characters, cuts);
  # the hard sample's b-roll pictures
  opencv-doc
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# The web UI builds with Node.js and npm (Vite 5 runs on Debian's Node 18 or a newer one already
# on the machine); Debian's own are installed only when there is none.
if ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} Debian packages are installed"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then
    sudo="sudo"
  else
    echo "setup: missing packages: ${missing[*]}" >&2
    echo "setup: run this script as root (or install sudo) to install them" >&2
    exit 2
  fi
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
