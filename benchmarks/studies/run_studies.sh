#!/usr/bin/env bash
# Reproduce the results of docs/studies.md: every study through `sknets study`,
# then the accuracy targets, then the docs' figures and tables.
#
#   SKNETS_DATA=/path/to/data bash benchmarks/studies/run_studies.sh [OUT_DIR]
#
# The training-set sizes and epochs below are those of the recorded runs
# (benchmarks/README.md, "Study runs"), cut where the full setting did not fit
# the time budget on two shared cores; drop --n-train and --epochs to run each
# study's full setting.
set -euo pipefail
out=${1:-runs}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
study() { python -m sknets study "$@" --n-threads 1 --quiet; }

study architectures --dataset mnist --out "$out/architectures"
study optimizers --dataset mnist --n-train 20000 --out "$out/optimizers"
study regularizers --dataset mnist --n-train 20000 --epochs 20 --out "$out/regularizers"
study autoencoder --dataset mnist --n-train 20000 --out "$out/autoencoder"
study training --dataset fashion-mnist --n-train 4000 --out "$out/training"
study search --dataset fashion-mnist --n-train 6000 --out "$out/search"
study data-size --dataset mnist --n-train 24000 --epochs 10 --out "$out/data-size"
# Kuzushiji-49, for those who have it:
#   study training --dataset k49 --n-train 4000 --out "$out/training-k49"

python benchmarks/studies/targets.py --out "$out/targets.json"
python benchmarks/studies/collect.py "$out"/*/ --figures docs/figures/studies --page docs/studies.md
