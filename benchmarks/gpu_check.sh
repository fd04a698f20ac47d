#!/usr/bin/env bash
# The GPU proof as one script, for a CUDA machine that has PyTorch, pandas and scikit-learn but not
# this project's other packages: installs kfp-cicd without dependencies (training's worker path
# needs no MLflow or kfp), runs the `gpu` tests (NCCL, bf16, a worker killed and resumed on CUDA),
# then the training throughput benchmark (CPU inner loop, CPU DDP scaling, GPU inner loop).
# Figures land in $OUT (default /tmp/kfp-cicd-gpu-check).
#
# Usage, from the repository root: bash benchmarks/gpu_check.sh
set -uo pipefail
OUT=${OUT:-/tmp/kfp-cicd-gpu-check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PYTHON=${PYTHON:-python3}
{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  "$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'nccl', torch.cuda.nccl.version(), torch.cuda.get_device_name(0), 'bf16', torch.cuda.is_bf16_supported())"
  nproc
} 2>&1 | tee "$OUT/device.txt"
"$PYTHON" -m pip install -q --no-index --no-deps --no-build-isolation --ignore-requires-python . || exit 1
REPO=$(pwd)
cd "$(mktemp -d)"  # away from the source tree, whose kfp_cicd/ would shadow the installed package
"$PYTHON" -m pytest -m gpu --noconftest -p no:cacheprovider -v -s "$REPO/tests/train/test_gpu_training.py" \
  2>&1 | tee "$OUT/gpu_tests.txt"
tests=${PIPESTATUS[0]}
"$PYTHON" "$REPO/benchmarks/training_throughput.py" --skip-scaling 2>&1 | tee "$OUT/throughput.txt"
bench=${PIPESTATUS[0]}
# CPU DDP scaling on this machine's idle cores, GPU hidden so the workers use gloo processes
CUDA_VISIBLE_DEVICES= "$PYTHON" "$REPO/benchmarks/training_throughput.py" 2>&1 | tee "$OUT/cpu_scaling.txt"
bench=$(( bench || PIPESTATUS[0] ))
echo "gpu tests exit $tests, benchmark exit $bench"
exit $(( tests || bench ))
