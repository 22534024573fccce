#!/usr/bin/env bash
# The prepared GPU check of issue 15 (clip_score at the speed of the model), one run:
#
#   bash bench/gpu_clip.sh            # on a GPU machine (< 5 min on one H200, 16 cores)
#   bash bench/gpu_clip.sh --smoke    # on any CPU machine: tiny model, 40 images
#
# It generates ~8,000 deterministic JPEGs (256-1600 px), then for ViT-B-32 and ViT-L-14
# (random weights, bf16) measures the bare model on GPU tensors, a bare loop with the
# stage's decode, and the clip_score stage through `curate run`; prints images/s and the
# ratios, writes $OUT/gpu_clip.json (else /tmp/gpu_clip_out/). Details: bench/gpu_clip.py.
# Nothing is downloaded: models have random weights, images are served on 127.0.0.1.
#
# Python packages: whatever `python3` imports; if ray/open_clip/pydantic/webdataset/
# imagehash are missing (the H200 image has torch but not these), the pack made by
# `bash bench/gpu_pack.sh` (.gpu_pack/site.tar.xz, carried to the machine) is unpacked
# into /tmp/gpu_site and put on PYTHONPATH.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
SMOKE=0
for arg in "$@"; do [ "$arg" = "--smoke" ] && SMOKE=1; done

die() { echo "gpu_clip: FAIL: $*" >&2; exit 2; }

if [ "$SMOKE" = 0 ]; then
  command -v nvidia-smi >/dev/null 2>&1 \
    || die "nvidia-smi not found: this check needs an NVIDIA GPU (use --smoke on a CPU)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader \
    || die "nvidia-smi cannot reach the driver"
fi

need="import ray, ray.data, open_clip, pydantic, webdataset, imagehash, scipy, pyarrow"
if ! "$PY" -c "$need" >/dev/null 2>&1; then
  [ -f .gpu_pack/site.tar.xz ] || die "python packages missing ($need) and no \
.gpu_pack/site.tar.xz: run 'bash bench/gpu_pack.sh' where PyPI is reachable and carry .gpu_pack"
  mkdir -p /tmp/gpu_site
  if command -v xz >/dev/null 2>&1; then
    tar -xJf .gpu_pack/site.tar.xz -C /tmp/gpu_site
  else
    "$PY" -c "import tarfile; tarfile.open('.gpu_pack/site.tar.xz').extractall('/tmp/gpu_site', filter='fully_trusted')"
  fi
  export PYTHONPATH="/tmp/gpu_site${PYTHONPATH:+:$PYTHONPATH}"
  "$PY" -c "$need" || die "packages still missing after unpacking .gpu_pack (see above)"
fi

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"   # this checkout wins, in Ray too
export PYTHONUNBUFFERED=1
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1         # never download weights
export RAY_USAGE_STATS_ENABLED=0                       # no usage reporting
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}           # the bench process; Ray sets actors'
ulimit -n 65536 2>/dev/null || true
exec "$PY" bench/gpu_clip.py "$@"
