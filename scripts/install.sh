#!/usr/bin/env bash
# Installs the built library, the C header, the C++ wrapper, avg.pc and a CMake package
# under PREFIX (default /usr/local), so that `cc $(pkg-config --cflags --libs avg)` and
# CMake's find_package(avg) (target avg::avg) work. The shared
# library is PREFIX/lib/libavg.so.ABI.VERSION, its soname libavg.so.ABI (ABI is the
# header's AVG_ABI_VERSION) and libavg.so links to it. It is installed stripped; its
# debug info goes to PREFIX/lib/.debug, linked from the library (gdb finds it there).
# Build first: cargo build --release
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${1:-/usr/local}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
abi=$(sed -n 's/^pub const AVG_ABI_VERSION: u32 = \([0-9]*\);/\1/p' src/ffi/mod.rs)
soname=libavg.so.$abi
file=$soname.$version
readelf -d target/release/libavg.so | grep -q "SONAME.*\[$soname\]" ||
    { echo "target/release/libavg.so is not $soname: rebuild (cargo build --release)" >&2; exit 1; }
install -d "$prefix/lib/pkgconfig" "$prefix/include" "$prefix/lib/.debug"
objcopy --only-keep-debug target/release/libavg.so "$prefix/lib/.debug/$file.debug"
strip --strip-debug --strip-unneeded -o "$prefix/lib/$file" target/release/libavg.so
(cd "$prefix/lib" && objcopy --add-gnu-debuglink=".debug/$file.debug" "$file")
chmod 0755 "$prefix/lib/$file"
ln -sfn "$file" "$prefix/lib/$soname"
ln -sfn "$soname" "$prefix/lib/libavg.so"
install -m 0644 target/release/libavg.a "$prefix/lib/"
install -m 0644 include/avg.h bindings/cpp/avg.hpp "$prefix/include/"
sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" scripts/avg.pc.in > "$prefix/lib/pkgconfig/avg.pc"
install -d "$prefix/lib/cmake/avg"
sed -e "s|@FILE@|$file|" -e "s|@SONAME@|$soname|" scripts/avgConfig.cmake.in > "$prefix/lib/cmake/avg/avgConfig.cmake"
sed -e "s|@VERSION@|$version|" -e "s|@MAJOR@|${version%%.*}|" -e "s|@MINOR@|$(echo "$version" | cut -d. -f2)|" \
    scripts/avgConfigVersion.cmake.in > "$prefix/lib/cmake/avg/avgConfigVersion.cmake"
echo "installed libavg $version under $prefix"
