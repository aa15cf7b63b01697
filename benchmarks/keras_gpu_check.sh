#!/usr/bin/env bash
# GPU check for framework=tensorflow; a few minutes on one GPU. Not yet run on a GPU.
#
#   bash benchmarks/keras_gpu_check.sh      # from the repository root, any directory works
#
# Needs a CUDA build of TensorFlow (pip install "tensorflow[and-cuda]"; tensorflow-cpu sees no
# GPU). Trains mlp and cnn on digits for 3 epochs with device=gpu (32, bf16-mixed, 16-mixed),
# then device=auto (must pick the GPU) with framework.memory_limit_mb=2048, and prints the device
# each run recorded and the GPU memory TensorFlow held (nvidia-smi). Skips, exit 0, when
# TensorFlow sees no GPU. Writes run directories under $OUT (default /tmp/keras_gpu_check) and a
# summary to $OUT/keras_gpu_check.txt.
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
OUT=${OUT:-/tmp/keras_gpu_check}
mkdir -p "$OUT"
SUMMARY="$OUT/keras_gpu_check.txt"
: > "$SUMMARY"
say() { echo "$*" | tee -a "$SUMMARY"; }

$PY - <<'PY' > "$OUT/devices.txt" 2>&1
import sys
from launcher.frameworks.keras import runtime
tf, keras = runtime.import_tensorflow()
gpus = tf.config.list_physical_devices("GPU")
print(f"tensorflow {tf.__version__}, keras {keras.__version__}, GPUs: {gpus}")
for gpu in gpus:
    print(tf.config.experimental.get_device_details(gpu))
sys.exit(0 if gpus else 1)
PY
found=$?
cat "$OUT/devices.txt" | tee -a "$SUMMARY"
if [ $found -ne 0 ]; then
    say "SKIP: TensorFlow sees no GPU here"
    exit 0
fi

status=0
run() {  # name, overrides...
    local name=$1; shift
    local dir="$OUT/$name"
    rm -rf "$dir"
    timeout 300 $PY -m launcher framework=tensorflow data=digits trainer.max_epochs=3 \
        "hydra.run.dir=$dir" "$@" > "$OUT/$name.log" 2>&1 &
    local pid=$!
    local peak=0
    while kill -0 $pid 2>/dev/null; do  # the GPU memory this run holds, sampled
        local used=$(nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits 2>/dev/null \
                     | awk -F', ' -v p=$pid '$1==p {print $2}')
        [ -n "$used" ] && [ "$used" -gt "$peak" ] && peak=$used
        sleep 1
    done
    wait $pid
    local rc=$?
    if [ $rc -eq 0 ]; then
        $PY - "$dir" "$name" "$peak" <<'PY' | tee -a "$SUMMARY"
import json, sys
from pathlib import Path
run, name, peak = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
m = json.loads((run / "metrics.json").read_text())
meta = json.loads((run / "model" / "metadata.json").read_text())
t = meta["training"]
print(f"{name:14s} OK  device={m['device']}  precision={t['precision']}  api={t['api']}  "
      f"test accuracy={m['test']['accuracy']:.4f}  epochs={m['epochs']}  peak GPU memory {peak} MiB")
PY
    else
        status=1
        say "$name FAILED (exit $rc); last lines of $OUT/$name.log:"
        tail -15 "$OUT/$name.log" | tee -a "$SUMMARY"
    fi
}
run gpu-mlp model=mlp device=gpu
run gpu-cnn-bf16 model=cnn device=gpu trainer.precision=bf16-mixed
run gpu-cnn-fp16 model=cnn device=gpu trainer.precision=16-mixed
run gpu-transformer model=transformer device=gpu
run auto-capped model=mlp device=auto framework.memory_limit_mb=2048
say "keras_gpu_check finished with status $status"
exit $status
