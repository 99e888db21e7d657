#!/usr/bin/env bash
# A CUDA 13.0 build toolkit from PyPI's nvidia-* wheels, for machines without a system
# CUDA install (and without a GPU): nvcc, headers, cuBLAS, cuRAND, NVRTC, and a link-time
# stand-in for the driver's libcuda.so (the real one comes with the driver where the
# program runs). Prints the environment for `cargo build --features cuda`:
#
#   eval "$(scripts/cuda-toolkit.sh /opt/avg-cuda)"
#   scripts/gpu-check.sh --bundle gpu-bundle
set -euo pipefail
dir=${1:?usage: scripts/cuda-toolkit.sh DIR}
mkdir -p "$dir/wheels" "$dir/stub"
dir=$(cd "$dir" && pwd)
if [ ! -x "$dir/x/nvidia/cu13/bin/nvcc" ]; then
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$dir/wheels" \
    'nvidia-cuda-nvcc==13.0.*' 'nvidia-cuda-runtime==13.0.*' 'nvidia-cuda-crt==13.0.*' 'nvidia-cuda-cccl==13.0.*' \
    'nvidia-nvvm==13.0.*' 'nvidia-cuda-nvrtc==13.0.*' 'nvidia-cublas==13.0.*' 'nvidia-curand==10.4.0.*' >&2
  for w in "$dir"/wheels/*.whl; do python3 -m zipfile -e "$w" "$dir/x"; done
  chmod +x "$dir"/x/nvidia/cu13/bin/* "$dir"/x/nvidia/cu13/nvvm/bin/*
fi
cuda=$dir/x/nvidia/cu13
# Unversioned names for the linker, and libcuda.so with every driver entry point cudarc
# declares (empty bodies: only the names matter at link time).
for l in cublas.so.13 cublasLt.so.13 curand.so.10 nvrtc.so.13 cudart.so.13; do ln -sf "$cuda/lib/lib$l" "$dir/stub/lib${l%%.so*}.so"; done
(cd "$(dirname "$0")/.." && cargo fetch --locked >&2)
decls=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-*/src/driver/sys/mod.rs | tail -1)
grep -oP '^pub unsafe fn \Kcu\w+' "$decls" | sort -u | sed 's/.*/void &(void){}/' >"$dir/stub/libcuda.c"
cc -shared -fPIC -o "$dir/stub/libcuda.so" "$dir/stub/libcuda.c" -Wl,-soname,libcuda.so.1
echo "export CUDA_HOME=$cuda PATH=$cuda/bin:\$PATH LIBRARY_PATH=$dir/stub CUDA_COMPUTE_CAP=\${CUDA_COMPUTE_CAP:-90}"
