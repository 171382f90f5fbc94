#!/usr/bin/env bash
# The main job on the bundled samples: build every example recipe into a store,
# list the versions, verify one and export it for TRL and LLaMA-Factory.
# Usage: bash examples/demo.sh [VENV_BIN]   (store: $MEDCURATE_STORE, default .demo/datasets)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-.venv/bin}"
export MEDCURATE_STORE="${MEDCURATE_STORE:-.demo/datasets}"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
# EHR versions pseudonymise patient keys with the user's secret; the demo's synthetic notes use a
# demo-only one. A real project keeps its own secret out of the repository.
export MEDCURATE_DEID_SECRET="${MEDCURATE_DEID_SECRET:-medcurate-demo-only-secret}"
medcurate() { "$BIN/python" -m medcurate "$@"; }

# Order matters: the CMedINS and mixing recipes read versions the earlier ones publish.
for recipe in consultation_qa kg_qa ehr_pairs cmedins mix; do
  if [ -f "examples/recipes/$recipe.yaml" ]; then
    echo "== medcurate build examples/recipes/$recipe.yaml"
    medcurate build "examples/recipes/$recipe.yaml"
  fi
done

echo "== medcurate datasets list"
medcurate datasets list
echo "== medcurate datasets show consultation-qa@latest"
medcurate datasets show consultation-qa@latest
echo "== medcurate datasets export consultation-qa@latest --format trl"
medcurate datasets export consultation-qa@latest --format trl --out .demo/export/trl
medcurate datasets export consultation-qa@latest --format alpaca --out .demo/export/alpaca
echo "demo done: versions under $MEDCURATE_STORE, exports under .demo/export"
