#!/usr/bin/env bash
# Installs the built library, the C header, the C++ wrapper and avg.pc under PREFIX
# (default /usr/local), so that `cc $(pkg-config --cflags --libs avg)` works. The shared
# library is installed stripped; its debug info goes to PREFIX/lib/.debug/libavg.so.debug,
# linked from the library (gdb finds it there). Build first: cargo build --release
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${1:-/usr/local}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
install -d "$prefix/lib/pkgconfig" "$prefix/include" "$prefix/lib/.debug"
objcopy --only-keep-debug target/release/libavg.so "$prefix/lib/.debug/libavg.so.debug"
strip --strip-debug --strip-unneeded -o "$prefix/lib/libavg.so" target/release/libavg.so
(cd "$prefix/lib" && objcopy --add-gnu-debuglink=.debug/libavg.so.debug libavg.so)
chmod 0755 "$prefix/lib/libavg.so"
install -m 0644 target/release/libavg.a "$prefix/lib/"
install -m 0644 include/avg.h bindings/cpp/avg.hpp "$prefix/include/"
sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" scripts/avg.pc.in > "$prefix/lib/pkgconfig/avg.pc"
echo "installed libavg $version under $prefix"
