#!/usr/bin/env bash
# One prepared GPU check (issue 12, item 7), sized for a single ~10-minute device call on one GPU.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]        # default OUT_DIR: $OUT if set, else gpu_check_out
#
# 1. training throughput and peak memory of TAP, TF-CLIP and CG-CLIP with random ViT-B/16 weights at 256x128,
#    32 tracklets x 8 frames per step (the paper's batch), bf16 AMP and fp16 AMP (GradScaler), through the
#    trainer's own step (benchmarks/bench_train_step.py);
# 2. `torchrun --nproc_per_node 1` DDP: a 1-epoch `cgclip train` of TAP on a tiny synthetic world (the DDP code path
#    end to end: process group, DistributedSampler, all-reduce of CLIP-Memory / Text Memory, rank-0 writing);
# 3. feature-extraction throughput, fp32 and bf16, ViT-B/16 layout (benchmarks/bench_speed.py);
# 4. the TFE-versus-TMD temporal table at ViT-B/16 widths on the GPU.
# Every step writes its table to OUT_DIR (JSON + log); nothing downloads (random weights, synthetic data).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${1:-${OUT:-gpu_check_out}}"
mkdir -p "$OUT_DIR"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1 CGCLIP_PROGRESS=0
log() { echo "[gpu_check $(date +%H:%M:%S)] $*" | tee -a "$OUT_DIR/gpu_check.log"; }

if ! python -c "import cgclip" 2>/dev/null; then
  log "installing the project (torch from the machine's own install or PyPI)"
  python -m pip install -q -e ".[test]" >> "$OUT_DIR/gpu_check.log" 2>&1 || { log "install failed"; exit 1; }
fi
python - <<'PY' | tee -a "$OUT_DIR/gpu_check.log"
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "device", torch.cuda.get_device_name(0),
      "bf16", torch.cuda.is_bf16_supported())
PY

for prec in bf16 fp16; do
  log "1. training step, ViT-B/16 random weights, 32 x 8 frames at 256x128, $prec"
  timeout 150 python benchmarks/bench_train_step.py --random-clip vit-b-16 --device cuda --precision "$prec" \
      --batch 32 --seq-len 8 --image-size 256 128 --steps 10 --warmup 3 --json "$OUT_DIR/train_step_$prec.json" \
      2>&1 | tee -a "$OUT_DIR/gpu_check.log" || log "step 1 ($prec) failed or timed out"
done

log "2. torchrun DDP, 1 process, TAP on a tiny synthetic world, 1 epoch"
WORK="$(mktemp -d)"
( cgclip synth sports --size tiny --seed 0 --out "$WORK/world" --no-contact-sheet \
  && cgclip build-mot --mot "$WORK/world" --out "$WORK/ds" --identities "$WORK/world/identities.csv" \
       --mapping "$WORK/world/track_mapping.csv" \
  && timeout 180 torchrun --standalone --nproc_per_node 1 -m cgclip train --preset tiny --dataset "$WORK/ds" \
       --model tap --out "$WORK/run" --set train.epochs=1 --set train.device=cuda \
  && cp "$WORK/run/metrics.jsonl" "$OUT_DIR/ddp_metrics.jsonl" ) 2>&1 | tail -20 | tee -a "$OUT_DIR/gpu_check.log" \
  || log "step 2 failed"

log "3. feature extraction throughput, ViT-B/16 layout, fp32 and bf16"
timeout 150 python benchmarks/bench_speed.py --arch vit-b-16 --device cuda --batch 32 --batches 10 --warmup 3 \
    --skip-temporal 2>&1 | tee "$OUT_DIR/extract_speed.md" | tee -a "$OUT_DIR/gpu_check.log" || log "step 3 failed"

log "4. TFE vs TMD, ViT-B/16 widths, T = 8 ... 128, on the GPU"
timeout 120 python benchmarks/bench_speed.py --arch vit-b-16 --device cuda --skip-throughput --temporal-batch 8 \
    --repeats 10 --backward 2>&1 | tee "$OUT_DIR/temporal_speed.md" | tee -a "$OUT_DIR/gpu_check.log" \
    || log "step 4 failed"
log "done; results in $OUT_DIR"
