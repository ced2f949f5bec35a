#!/usr/bin/env bash
# The base model's curriculum through the kit's own pretraining stage (issue 23; bench/README.md, fifth probe pass).
# Runs `gdo-repro toyworld` and `gdo-repro models` on the miniature's params with a minimal pool, 96-pixel images
# and shapes filling their cells; every stage's last 200 rows are held out; results in
# <out>/miniature/pretrain/held_out.json (per stage, per question type).
#   bash bench/curriculum_kit.sh [out folder] [recipe] [epochs of the letter drill] [order]   (the last two: full)
# recipe binding (default): 300 steps naming a lone shape's kind, then the named-shape colour drill as the corpus
#                           (2 epochs of 12,000 rows, linear schedule, no weight decay)
# recipe full:              the letter drill (100,000 text rows, batch 32, 2 epochs), the kind drill and the
#                           named-shape colour drill (order letter-first: in that order; letter-last: kind, colour,
#                           letter; mixed: kind, then letters and colours in one stage), then the base corpus
#                           (8,000 rows, a quarter of them drills, 2 epochs)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/gdo_curriculum_kit}; RECIPE=${2:-binding}; LETTER_EPOCHS=${3:-2}; ORDER=${4:-letter-first}
T="checkpoint_fractions: [1.0], eval_ratio: 0.0, min_pixels: 9216, max_pixels: 9216, per_device_batch_size: 16, warmup_ratio: 0.02"
LIN="learning_rate: 2.0e-3, weight_decay: 0.0, lr_scheduler: linear, $T"
KIND="{corpus: 'toyworld:base_corpus/kind.jsonl', train: {learning_rate: 2.0e-3, num_epochs: 1, $T}}"
O=(output_root="$OUT" toyworld.n_onevision=6 toyworld.n_llava_video=2 toyworld.n_llava665k=4 toyworld.n_visionflan=2
   toyworld.image_size=96 toyworld.video_size=96 toyworld.shape_fraction=0.875 toyworld.bench_questions_per_task=1
   toyworld.image_bench_size=1 models.pretrain.enabled=true models.pretrain.held_out=200)
if [ "$RECIPE" = binding ]; then
  O+=(toyworld.n_base_corpus=0 "toyworld.base_skills={kind: 5000, colour_named: 12200}"
      models.pretrain.corpus=toyworld:base_corpus/colour_named.jsonl "models.pretrain.curriculum=[$KIND]"
      "models.pretrain.train={num_epochs: 2, $LIN}")
else
  LETTER="{corpus: 'toyworld:base_corpus/letter.jsonl', train: {num_epochs: $LETTER_EPOCHS, ${LIN/per_device_batch_size: 16/per_device_batch_size: 32}}}"
  COLOUR="{corpus: 'toyworld:base_corpus/colour_named.jsonl', train: {num_epochs: 2, $LIN}}"
  case "$ORDER" in
    letter-first) STAGES="$LETTER, $KIND, $COLOUR" ;;
    letter-last) STAGES="$KIND, $COLOUR, $LETTER" ;;
    mixed) STAGES="$KIND, {corpus: ['toyworld:base_corpus/letter.jsonl', 'toyworld:base_corpus/colour_named.jsonl'], train: {num_epochs: $LETTER_EPOCHS, ${LIN/per_device_batch_size: 16/per_device_batch_size: 32}}}" ;;
    *) echo "order: letter-first, letter-last or mixed" >&2; exit 2 ;;
  esac
  O+=(toyworld.n_base_corpus=8000 toyworld.base_corpus_skill_ratio=0.25
      "toyworld.base_skills={kind: 5000, letter: 100200, colour_named: 12200}"
      "models.pretrain.curriculum=[$STAGES]"
      "models.pretrain.train={num_epochs: 2, $LIN}")
fi
S=(); for o in "${O[@]}"; do S+=(--set "$o"); done
.venv/bin/gdo-repro toyworld --params params/miniature.yaml "${S[@]}"
/usr/bin/time -v .venv/bin/gdo-repro models --params params/miniature.yaml "${S[@]}"
