#!/usr/bin/env bash
# Wheels of what medssl imports that the lent GPU machines' image lacks (it has Python 3.12,
# torch, torchvision, numpy, scipy, scikit-learn, matplotlib, torchmetrics, timm, tqdm, ...).
# Run here, in the repository root, before the device check; `.whl/` is git-ignored and
# travels with `carry: [".whl"]` (about 3 MB). lightly's hydra-core is not imported by medssl.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
rm -rf .whl && mkdir .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d .whl \
  lightly==1.6.0 segmentation-models-pytorch==0.6.0 pydicom==3.0.2 openpyxl==3.1.5 \
  et-xmlfile xlrd==2.0.1 lightning-fabric==2.6.6 lightning-utilities
du -sh .whl && ls .whl
