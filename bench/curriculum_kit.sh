#!/usr/bin/env bash
# The base model's curriculum through the kit's own pretraining stage (issue 23; bench/README.md, fifth probe pass):
# the toy world's skill drills (toyworld.base_skills), 300 steps naming a lone shape's kind
# (models.pretrain.curriculum), then the named-shape colour drill as the corpus (models.pretrain.corpus), each
# stage's last 200 rows held out. Runs `gdo-repro toyworld` and `gdo-repro models` on the miniature's params
# with a minimal pool; results in <out>/miniature/pretrain/held_out.json.
#   bash bench/curriculum_kit.sh [out folder] [epochs of the colour drill] [scheduler] [weight decay]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/gdo_curriculum_kit}; EPOCHS=${2:-2}; SCHED=${3:-linear}; WD=${4:-0.0}
T="checkpoint_fractions: [1.0], eval_ratio: 0.0, min_pixels: 9216, max_pixels: 9216, per_device_batch_size: 16, warmup_ratio: 0.02"
O=(output_root="$OUT" toyworld.n_onevision=6 toyworld.n_llava_video=2 toyworld.n_llava665k=4 toyworld.n_visionflan=2
   toyworld.image_size=96 toyworld.video_size=96 toyworld.shape_fraction=0.875 toyworld.bench_questions_per_task=1
   toyworld.image_bench_size=1 toyworld.n_base_corpus=0 "toyworld.base_skills={kind: 5000, colour_named: 12200}"
   models.pretrain.enabled=true models.pretrain.held_out=200 models.pretrain.corpus=toyworld:base_corpus/colour_named.jsonl
   "models.pretrain.curriculum=[{corpus: 'toyworld:base_corpus/kind.jsonl', train: {learning_rate: 2.0e-3, num_epochs: 1, $T}}]"
   "models.pretrain.train={learning_rate: 2.0e-3, num_epochs: $EPOCHS, $T, weight_decay: $WD, lr_scheduler: $SCHED}")
S=(); for o in "${O[@]}"; do S+=(--set "$o"); done
.venv/bin/gdo-repro toyworld --params params/miniature.yaml "${S[@]}"
/usr/bin/time -v .venv/bin/gdo-repro models --params params/miniature.yaml "${S[@]}"
