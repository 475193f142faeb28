#!/usr/bin/env bash
# Every check that needs a CUDA device, in one run: the tests that skip without
# one (CUDA graphs, data on the device, pickling a CUDA model), then the GPU
# table of docs/benchmarks.md (benchmarks/bench_gpu.py). Output goes to
# $OUT (or ./gpu-checks).
#
# On a machine with a GPU and PyTorch but not sknets' other dependencies,
# bring them as wheels (skorch has no compiled code: `pip download --no-deps
# skorch` and its pure-Python needs) in .whl/, and the MNIST files in
# data/mnist/ (both ignored by git), then:
#
#     bash benchmarks/gpu_checks.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu-checks}"
mkdir -p "$out"
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl && export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
data="${SKNETS_TEST_DATA:-data}"
status=0
(nvidia-smi; python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name())") \
    > "$out/device.txt" 2>&1 || status=1
python3 -m pytest -q -rs -p no:cacheprovider tests/test_cuda_graphs.py tests/test_scaling.py \
    tests/test_persistence.py tests/test_mlp.py -k "cuda or device" 2>&1 | tee "$out/tests.txt" \
    || status=1
python3 benchmarks/bench_gpu.py --data-home "$data" --epochs 2 --repeats 3 2>&1 \
    | tee "$out/bench_gpu.md" || status=1
exit "$status"
