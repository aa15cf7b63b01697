#!/usr/bin/env bash
# GPU check for framework=pytorch (issue 3); about 1-2 minutes on one H100.
#
#   bash benchmarks/gpu_check.sh            # from the repository root, any directory works
#
# Trains mlp and cnn on digits for 3 epochs with device=gpu and trainer.precision=bf16-mixed,
# then device=auto (must pick cuda) and device.strategy=ddp on one GPU, and prints the device
# each run recorded (metrics.json and model/metadata.json). Skips, exit 0, when torch is
# missing and cannot be installed, or when CUDA is not available. Writes its run directories
# under $OUT (default /tmp/gpu_check) and a summary to $OUT/gpu_check.txt.
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
SUMMARY="$OUT/gpu_check.txt"
: > "$SUMMARY"
say() { echo "$*" | tee -a "$SUMMARY"; }

if ! $PY -c "import torch, lightning_fabric, safetensors, hydra, sklearn, optuna, skops" 2>/dev/null; then
    say "installing the project with the torch extra (keeps an installed torch if it fits torch>=2.1,<2.15)"
    timeout 180 $PY -m pip install --quiet -e ".[torch]" 2>&1 | tail -3 || true
fi
if ! $PY -c "import torch, lightning_fabric" 2>/dev/null; then
    say "SKIP: torch/lightning-fabric are not importable here and could not be installed"
    exit 0
fi
$PY - <<'PY' | tee -a "$SUMMARY"
import torch, lightning_fabric as lightning
print(f"torch {torch.__version__} (CUDA build {torch.version.cuda}), lightning {lightning.__version__}")
print(f"torch.cuda.is_available() = {torch.cuda.is_available()}")
if torch.cuda.is_available():
    print(f"device 0: {torch.cuda.get_device_name(0)}, {torch.cuda.device_count()} GPU(s), "
          f"bf16 supported: {torch.cuda.is_bf16_supported()}")
PY
if ! $PY -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    say "SKIP: CUDA is not available to torch"
    exit 0
fi

status=0
run() {  # name, overrides...
    local name=$1; shift
    local dir="$OUT/$name"
    rm -rf "$dir"
    local start=$(date +%s)
    timeout 150 $PY -m launcher framework=pytorch data=digits trainer.max_epochs=3 \
        "hydra.run.dir=$dir" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    if [ $rc -eq 0 ]; then
        $PY - "$dir" "$name" "$(( $(date +%s) - start ))" <<'PY' | tee -a "$SUMMARY"
import json, sys
from pathlib import Path
run, name, secs = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
m = json.loads((run / "metrics.json").read_text())
meta = json.loads((run / "model" / "metadata.json").read_text())
lines = [l for l in (run / "train.log").read_text().splitlines() if "pytorch:" in l]
print(f"{name:12s} OK  metrics.device={m['device']}  metadata.device={meta.get('device')}  "
      f"test accuracy={m['test']['accuracy']:.4f}  epochs={m['epochs']}  {secs}s")
print(f"{'':12s}     {lines[0].split(' - ', 1)[-1] if lines else ''}")
PY
    else
        status=1
        say "$name FAILED (exit $rc); last lines of $OUT/$name.log:"
        tail -15 "$OUT/$name.log" | tee -a "$SUMMARY"
    fi
}
run gpu-mlp model=mlp device=gpu trainer.precision=bf16-mixed
run gpu-cnn model=cnn device=gpu trainer.precision=bf16-mixed
run auto-mlp model=mlp device=auto
run ddp1-mlp model=mlp device=gpu device.strategy=ddp
say "gpu_check finished with status $status"
exit $status
