#!/usr/bin/env bash
# Installs the built library, the C header, the C++ wrapper and avg.pc under PREFIX
# (default /usr/local), so that `cc $(pkg-config --cflags --libs avg)` works.
# Build first: cargo build --release
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${1:-/usr/local}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
install -d "$prefix/lib/pkgconfig" "$prefix/include"
install -m 0755 target/release/libavg.so "$prefix/lib/"
install -m 0644 target/release/libavg.a "$prefix/lib/"
install -m 0644 include/avg.h bindings/cpp/avg.hpp "$prefix/include/"
sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" scripts/avg.pc.in > "$prefix/lib/pkgconfig/avg.pc"
echo "installed libavg $version under $prefix"
