#!/usr/bin/env bash
# Train and evaluate a DuRNN word-level language model on the Brown corpus, on CPU.
#
#   bash examples/language_model/run_brown.sh
#
# Environment:
#   TRAIN_SECONDS  training-time budget in seconds (default 300)
#   THREADS        CPU threads for torch and preprocessing (default 2)
#   WORK           output directory (default examples/language_model/work)
# Outputs under $WORK: brown/ (text), brown-bin/ (fairseq data), checkpoints/, tensorboard/,
# logs/ (full logs of every stage) and results.txt (the summary printed at the end).
set -euo pipefail
cd "$(dirname "$0")/../.."

TRAIN_SECONDS=${TRAIN_SECONDS:-300}
THREADS=${THREADS:-2}
WORK=${WORK:-examples/language_model/work}
export OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS
export PYTHONWARNINGS=${PYTHONWARNINGS:-ignore}
BIN=.venv/bin
DATA=$WORK/brown-bin
CKPT=$WORK/checkpoints
LOGS=$WORK/logs
mkdir -p "$WORK" "$LOGS"

stage() { echo; echo "== $* ($(date +%H:%M:%S))"; }
now() { date +%s; }

stage "setup: bash examples/setup_venv.sh"
bash examples/setup_venv.sh

stage "prepare: download Brown, split by file, <unk> rare words"
t0=$(now)
$BIN/python examples/language_model/prepare_brown.py --workdir "$WORK" | tee "$LOGS/prepare.log"
t_prepare=$(( $(now) - t0 ))

stage "preprocess: fairseq-preprocess -> $DATA"
t0=$(now)
if [ -f "$DATA/dict.txt" ]; then
  echo "$DATA/dict.txt exists, skipping (delete $DATA to rebuild)"
else
  $BIN/fairseq-preprocess --only-source \
    --trainpref "$WORK/brown/train.txt" --validpref "$WORK/brown/valid.txt" \
    --testpref "$WORK/brown/test.txt" --destdir "$DATA" --workers "$THREADS" \
    > "$LOGS/preprocess.log" 2>&1 || { tail -20 "$LOGS/preprocess.log"; exit 1; }
  grep -E "\[None\] .*sents" "$LOGS/preprocess.log" | sed -E 's/^.*\[None\] //' || true
fi
# dict.txt holds the words; fairseq adds 4 specials (<s>, <pad>, </s>, <unk>)
vocab=$(( $(wc -l < "$DATA/dict.txt") + 4 ))
echo "dictionary: $vocab symbols (words, 4 specials, padding to a multiple of 8)"
t_preprocess=$(( $(now) - t0 ))

# Output layer: adaptive softmax over a large vocabulary (cheap on CPU), else tied embeddings.
if [ "$vocab" -gt 10000 ]; then
  # (fairseq's adaptive_loss refuses pytorch_ddp, hence legacy_ddp; one process either way)
  OUTPUT=(--criterion adaptive_loss --adaptive-softmax-cutoff 2000,10000 --ddp-backend legacy_ddp)
else
  OUTPUT=(--criterion cross_entropy --share-input-output-embed)
fi
stop_hours=$($BIN/python -c "print($TRAIN_SECONDS / 3600)")

stage "train: fairseq-train, ${TRAIN_SECONDS}s budget -> $CKPT"
# a fresh run each time: a leftover checkpoint_last.pt would be resumed, old curves mixed in
rm -rf "$CKPT" "$WORK/tensorboard"
t0=$(now)
$BIN/fairseq-train "$DATA" --user-dir durnn_plugin --task language_modeling \
  --arch durnn_lm --embed-dim 256 --hidden-size 512 --num-layers 2 \
  --dropout 0.4 --embed-dropout 0.2 "${OUTPUT[@]}" \
  --tokens-per-sample 128 --sample-break-mode none --max-tokens 4096 \
  --optimizer adam --adam-betas '(0.9, 0.999)' --clip-norm 0.25 \
  --lr 0.004 --lr-scheduler inverse_sqrt --warmup-updates 100 --warmup-init-lr 1e-4 \
  --max-epoch 1000 --stop-time-hours "$stop_hours" \
  --save-dir "$CKPT" --no-epoch-checkpoints --tensorboard-logdir "$WORK/tensorboard" \
  --log-format simple --log-interval 50 --seed 1 --cpu --num-workers 0 \
  2>&1 | tee "$LOGS/train.log" \
  | grep --line-buffered -E "\| (train_inner|valid|train) \||Stopping training|done training|Saved checkpoint" \
  | sed -u -E -e 's/^[0-9: -]+\| INFO \| //' -e 's/, (wpb|bsz|lr|clip|train_wall)=[^,]+//g' \
      -e 's/ \| (wpb|bsz|lr|clip|train_wall) [^|]*[^| ]//g' -e 's/ \(writing took.*//' \
  || { echo "fairseq-train failed; last lines of $LOGS/train.log:"; tail -20 "$LOGS/train.log"; exit 1; }
t_train=$(( $(now) - t0 ))
for f in checkpoint_best.pt checkpoint_last.pt; do
  [ -f "$CKPT/$f" ] || { echo "missing $CKPT/$f; see $LOGS/train.log"; tail -20 "$LOGS/train.log"; exit 1; }
done
updates=$(grep -oE "num_updates [0-9]+" "$LOGS/train.log" | tail -1 | cut -d' ' -f2)
epochs=$(grep -oE "\| epoch [0-9]+ \|" "$LOGS/train.log" | tail -1 | grep -oE "[0-9]+" | sed 's/^0*//')
fairseq_s=$(grep -oE "done training in [0-9.]+" "$LOGS/train.log" | grep -oE "[0-9.]+$")

ppl() {  # ppl SUBSET -> prints the perplexity line of fairseq-eval-lm
  $BIN/fairseq-eval-lm "$DATA" --user-dir durnn_plugin --task language_modeling \
    --path "$CKPT/checkpoint_best.pt" --gen-subset "$1" --tokens-per-sample 128 \
    --max-tokens 4096 --context-window 0 --cpu --num-workers 0 \
    > "$LOGS/eval_$1.log" 2>&1 || { tail -20 "$LOGS/eval_$1.log" >&2; exit 1; }
  grep -E "Loss \(base 2\)" "$LOGS/eval_$1.log" | sed -E 's/^.*eval_lm[^A-Z]*//'
}
stage "evaluate: fairseq-eval-lm on valid and test"
t0=$(now)
valid_line=$(ppl valid); echo "valid: $valid_line"
test_line=$(ppl test); echo "test:  $test_line"
t_eval=$(( $(now) - t0 ))
valid_ppl=$(sed -E 's/.*Perplexity: ([0-9.]+).*/\1/' <<< "$valid_line")
test_ppl=$(sed -E 's/.*Perplexity: ([0-9.]+).*/\1/' <<< "$test_line")

stage "sample: fairseq-interactive, top-20 sampling"
t0=$(now)
PROMPTS=("the jury said" "in the morning" "she looked at" "the president of the united states")
printf '%s\n' "${PROMPTS[@]}" | $BIN/fairseq-interactive "$DATA" --user-dir durnn_plugin \
  --task language_modeling --path "$CKPT/checkpoint_best.pt" --cpu \
  --sampling --sampling-topk 20 --beam 1 --nbest 1 --max-len-b 20 --seed 1 \
  > "$LOGS/sample.log" 2>&1 || { tail -20 "$LOGS/sample.log"; exit 1; }
samples=$(grep -E "^H-" "$LOGS/sample.log" | sort -t- -k2 -n | cut -f3)
t_sample=$(( $(now) - t0 ))
echo "$samples"

stage "summary"
{
  echo "DuRNN LM on Brown (embed 256, hidden 512, 2 layers, vocab $vocab), CPU, $THREADS threads"
  echo "training: budget ${TRAIN_SECONDS}s, fairseq-train done in ${fairseq_s}s (${t_train}s with start-up), $updates updates, stopped in epoch $epochs"
  echo "valid ppl: $valid_ppl"
  echo "test ppl:  $test_ppl"
  echo "stage seconds: prepare $t_prepare, preprocess $t_preprocess, train $t_train, eval $t_eval, sample $t_sample"
  echo "samples (prompt + top-20 sampled continuation):"
  sed 's/^/  /' <<< "$samples"
} | tee "$WORK/results.txt"
echo "checkpoints: $CKPT  tensorboard: $WORK/tensorboard  logs: $LOGS  summary: $WORK/results.txt"
