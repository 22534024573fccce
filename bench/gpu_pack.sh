#!/usr/bin/env bash
# Pack the Python packages bench/gpu_clip.sh needs beyond what the H200 image has
# (it has torch, torchvision, numpy, scipy, pandas, pyarrow, pillow, aiohttp, timm, ...
# but not Ray, open_clip, pydantic, webdataset, imagehash): cp312 manylinux wheels at
# this project's pins, unpacked, Ray's Java jars / RLlib / LLM parts left out, into one
# $DIR/site.tar.xz under the 64 MiB a device call may carry. Run it where PyPI is
# reachable; then run the check with carry [".gpu_pack"]:
#   bash bench/gpu_pack.sh && <device run> bash bench/gpu_clip.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
PYVER=${GPU_PYTHON_VERSION:-3.12}
DIR=${GPU_PACK_DIR:-.gpu_pack}
pin() { grep -i "^$1==" constraints.txt | head -1; }
PKGS="ray open_clip_torch ftfy wcwidth pydantic pydantic_core annotated-types \
typing-inspection webdataset braceexpand ImageHash PyWavelets jsonschema \
jsonschema-specifications referencing rpds-py typing_extensions"
rm -rf $DIR/wheels $DIR/site
mkdir -p $DIR/wheels $DIR/site
for name in $PKGS; do
  spec=$(pin "$name"); [ -n "$spec" ] || { echo "gpu_pack: no pin for $name" >&2; exit 2; }
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux1_x86_64 -d $DIR/wheels "$spec"
done
for w in $DIR/wheels/*.whl; do "$PY" -m zipfile -e "$w" $DIR/site; done
rm -rf $DIR/site/ray/jars $DIR/site/ray/rllib $DIR/site/ray/llm
# Ray's launchers must stay executable (zip extraction drops the mode bits).
find $DIR/site/ray -type f \( -name "*.so" -o -path "*/core/src/ray/*" \
  -o -name "gcs_server" -o -name "raylet" \) -exec chmod +x {} +
find $DIR/site -name "__pycache__" -prune -exec rm -rf {} +
tar -C $DIR/site -cf - . | xz -T0 -6 > $DIR/site.tar.xz
rm -rf $DIR/site $DIR/wheels
size=$(stat -c %s $DIR/site.tar.xz)
echo "gpu_pack: $DIR/site.tar.xz $((size / 1048576)) MiB (python $PYVER)"
[ "$size" -lt $((60 * 1048576)) ] || { echo "gpu_pack: too large to carry" >&2; exit 2; }
