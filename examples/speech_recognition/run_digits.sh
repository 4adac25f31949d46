#!/usr/bin/env bash
# Speech recognition on synthetic speech, offline, on CPU: synthesise (flite, festival,
# espeak-ng, Piper) -> fbank features -> sentencepiece vocabulary -> fairseq-train ->
# fairseq-generate --scoring wer on held-out voices, WER printed per voice for each test set
# (digits, numbers, commands, sentences).
#
#   bash examples/speech_recognition/run_digits.sh
#
# Environment:
#   ARCH           fairseq architecture (default s2t_durnn_s; e.g. s2t_transformer_xs);
#                  s2t_durnn_ctc_s (or s2t_durnn_ctc_m): the streaming CTC model, trained with
#                  --criterion durnn_ctc on global CMVN features (--config-yaml
#                  config_gcmvn.yaml; $DATA/gcmvn.npz made first if missing)
#   MODEL_ARGS     extra model options, e.g. "--encoder-layers 4" (default none)
#   TRAIN_ARGS     extra fairseq-train options, given last (so they win), e.g. another
#                  --criterion (default none)
#   TRAIN_MINUTES  training-time budget in minutes (default 30); 0: skip training and evaluate
#                  the checkpoint_best.pt already in $WORK/checkpoints
#   THREADS        CPU threads for torch (default 2)
#   WORK           work directory (default examples/speech_recognition/work)
#   PREPARE_ARGS   options of prepare_speech.py (default: every augmentation of the training
#                  copies, augment.DEFAULT_OPTIONS, the best variant of the README's ablation on the
#                  voice of an unseen engine; PREPARE_ARGS="" trains on the clean speech only)
#   DATA           the data directory (default $WORK/data)
#   PREPARE        1: run prepare_speech.py first (default); 0: use the existing $DATA
#   VENV           an existing virtual environment to use instead of ./.venv (default: create
#                  and fill ./.venv with examples/setup_venv.sh)
#   REAL_DEV       1: build the real-speech dev set $DATA/dev_real.tsv (prepare_real_dev.py:
#                  recordings of people from Debian packages, downloaded, not installed) and
#                  score it with the test sets (default); 0: leave it out
#   LM_MINUTES     training budget of the language model fused into the beam
#                  (train_speech_lm.py; default 5); 0: no language model
#   LM_WEIGHTS     LM weights tried on dev (default "0.1 0.2 0.3 0.5"); the one with the lowest
#                  dev WER, if lower than without the LM, decodes every set a second time
# Debian packages: flite, espeak-ng, sox, festival and three festival voices; run as root, the
# script installs the missing ones with apt-get (as .ci/run does), else it names them and stops.
# Outputs under $WORK: wav/, wav_real/, debs/, data/ (fairseq S2T data directory),
# checkpoints/, lm/ (the LM), logs/, results/ (generate output per test set, results/lm/ with
# the LM) and results.txt (the summary printed at the end).
set -euo pipefail
cd "$(dirname "$0")/../.."

ARCH=${ARCH:-s2t_durnn_s}
MODEL_ARGS=${MODEL_ARGS:-}
TRAIN_ARGS=${TRAIN_ARGS:-}
TRAIN_MINUTES=${TRAIN_MINUTES:-30}
THREADS=${THREADS:-2}
WORK=${WORK:-examples/speech_recognition/work}
export OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS
export PYTHONWARNINGS=${PYTHONWARNINGS:-ignore}
DATA=${DATA:-$WORK/data}
PREPARE=${PREPARE:-1}
CKPT=$WORK/checkpoints
LOGS=$WORK/logs
RESULTS=$WORK/results
HERE=examples/speech_recognition
TEST_SETS=(test_digits test_numbers test_commands test_sentences)
mkdir -p "$WORK" "$LOGS" "$RESULTS"

stage() { echo; echo "== $* ($(date +%H:%M:%S))"; }
now() { date +%s; }
REAL_DEV=${REAL_DEV:-1}
if [ "$REAL_DEV" = 1 ]; then TEST_SETS+=(dev_real); fi
LM_MINUTES=${LM_MINUTES:-5}
LM_WEIGHTS=${LM_WEIGHTS:-0.1 0.2 0.3 0.5}
SPEECH_DEBS="flite espeak-ng sox festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts"
missing_debs() {
  for p in $SPEECH_DEBS; do dpkg -s "$p" >/dev/null 2>&1 || printf '%s ' "$p"; done
}
if [ "$PREPARE" = 1 ] && command -v dpkg >/dev/null; then
  missing=$(missing_debs)
  if [ -n "$missing" ] && [ "$(id -u)" = 0 ]; then
    stage "setup: apt-get install ${missing% }"
    # shellcheck disable=SC2086
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends $missing >/dev/null; } || true
    missing=$(missing_debs)
    [ -z "$missing" ] || { echo "error: apt-get install ${missing% } failed" >&2; exit 1; }
  elif [ -n "$missing" ]; then
    echo "error: the speech engines need the Debian packages ${missing% }; install them with" \
      "'sudo apt-get install ${missing% }' or run this script as root" >&2
    exit 1
  fi
fi

if [ -z "${VENV:-}" ]; then
  stage "setup: bash examples/setup_venv.sh"
  bash examples/setup_venv.sh
  VENV=.venv
fi
BIN=$VENV/bin
AUGMENT="from examples.speech_recognition import augment; print(augment.DEFAULT_OPTIONS)"
PREPARE_ARGS=${PREPARE_ARGS-$($BIN/python -c "$AUGMENT")}
# the same task for training and decoding: rows checked at load time, every row decoded
# (fairseq-fixed 0.12.3.1 drops a last batch smaller than --required-batch-size-multiple)
TASK=(--user-dir durnn_plugin --task durnn_speech_to_text --required-batch-size-multiple 1
      --cpu --num-workers 0)

t0=$(now)
if [ "$PREPARE" = 1 ]; then
  stage "prepare: synthesise, features, manifests, vocabulary -> $DATA"
  # shellcheck disable=SC2086
  $BIN/python -m examples.speech_recognition.prepare_speech --workdir "$WORK" --data-dir "$DATA" \
    $PREPARE_ARGS | tee "$LOGS/prepare.log"
else
  [ -f "$DATA/config.yaml" ] || { echo "PREPARE=0 but no $DATA/config.yaml"; exit 1; }
  stage "prepare: skipped (PREPARE=0), using $DATA"
fi
if [ "$REAL_DEV" = 1 ]; then
  stage "prepare: real speech (Debian packages: apt-get download, dpkg -x) -> $DATA/dev_real.tsv"
  $BIN/python -m examples.speech_recognition.prepare_real_dev --workdir "$WORK" \
    --data-dir "$DATA" | tee "$LOGS/prepare_real_dev.log" \
    || echo "real-speech dev set left out (REAL_DEV=0 skips this step)"
fi
t_prepare=$(( $(now) - t0 ))

if [ "$TRAIN_MINUTES" != 0 ]; then
  stage "train: fairseq-train --arch $ARCH, ${TRAIN_MINUTES} min budget -> $CKPT"
  stop_hours=$($BIN/python -c "print($TRAIN_MINUTES / 60)")
  rm -rf "$CKPT"  # a fresh run: a leftover checkpoint_last.pt would be resumed
  : > "$LOGS/train.log"  # exists before the progress filter below starts reading it
  if [[ $ARCH == s2t_durnn_ctc* ]]; then  # streaming CTC model: global CMVN, CTC loss
    [ -f "$DATA/config_gcmvn.yaml" ] \
      || $BIN/python -m examples.speech_recognition.features gcmvn "$DATA"
    criterion=(--criterion durnn_ctc --config-yaml config_gcmvn.yaml)
  else
    criterion=(--criterion label_smoothed_cross_entropy --label-smoothing 0.1 --report-accuracy)
  fi
  t0=$(now)
  # shellcheck disable=SC2086
  $BIN/fairseq-train "$DATA" "${TASK[@]}" --train-subset train --valid-subset dev \
    --arch "$ARCH" $MODEL_ARGS "${criterion[@]}" \
    --optimizer adam --lr 2e-3 --lr-scheduler inverse_sqrt --warmup-updates 200 --clip-norm 10 \
    --max-tokens 12000 --max-update 1000000 --stop-time-hours "$stop_hours" \
    --save-dir "$CKPT" --no-epoch-checkpoints --log-format simple --log-interval 25 --seed 1 \
    $TRAIN_ARGS > "$LOGS/train.log" 2>&1 &
  train_pid=$!
  # progress: training and validation lines, warnings and errors (full log in $LOGS/train.log)
  tail -n +1 -f --pid=$train_pid "$LOGS/train.log" \
    | grep --line-buffered -E "\| (train_inner|valid on|WARNING|ERROR) |done training|error:" \
    | sed -u -E -e 's/^[0-9: -]+\| (INFO|WARNING|ERROR) \| //' \
        -e 's/ \| (wps|ups|wpb|bsz|lr|gnorm|clip|train_wall|gb_free|wall|ppl|nll_loss|total|n_correct) [^|]*[^| ]//g' \
        -e 's/, (wps|ups|wpb|bsz|lr|gnorm|clip|train_wall|gb_free|wall|ppl|nll_loss|total|n_correct)=[^,]+//g' \
        -e 's/(,| \|) [a-z0-9_]+_(u_mean|u_max|us_norm|gate)[= ][^,|]+//g' \
    || true
  wait $train_pid || { echo "fairseq-train failed; see $LOGS/train.log"; tail -5 "$LOGS/train.log"; exit 1; }
  t_train=$(( $(now) - t0 ))
else
  stage "train: skipped (TRAIN_MINUTES=0), evaluating $CKPT/checkpoint_best.pt"
  t_train=0
fi
[ -f "$CKPT/checkpoint_best.pt" ] || { echo "no $CKPT/checkpoint_best.pt; see $LOGS/train.log"; exit 1; }
updates=$(grep -oE "num_updates [0-9]+" "$LOGS/train.log" | tail -1 | cut -d' ' -f2 || true)
fairseq_s=$(grep -oE "done training in [0-9.]+" "$LOGS/train.log" | grep -oE "[0-9.]+$" || true)
params=$(grep -oE "model params: [0-9,]+" "$LOGS/train.log" | head -1 | grep -oE "[0-9,]+$" || true)
arch=$(grep -oE "arch='[^']+'" "$LOGS/train.log" | head -1 | cut -d"'" -f2 || true)

# generate SUBSET OUT [options]: fairseq-generate --scoring wer into OUT/generate-SUBSET.txt;
# prints its WER. An s2t_durnn_ctc model (encoder only, which fairseq-generate cannot decode) is
# decoded by stream.py's manifest mode instead: every row through the chunked stream (100 ms
# chunks), CTC prefix beam search, the same options and the same output format. The model is the
# one the training log names, else ARCH.
if [[ ${arch:-$ARCH} == s2t_durnn_ctc* ]]; then DECODER=stream.py; else DECODER=fairseq-generate
fi
generate() {
  local subset=$1 out=$2; shift 2
  mkdir -p "$out"
  if [ "$DECODER" = stream.py ]; then
    $BIN/python -m examples.speech_recognition.stream --data "$DATA" --gen-subset "$subset" \
      --path "$CKPT/checkpoint_best.pt" --beam 5 --threads "$THREADS" "$@" \
      --results-path "$out" > "$out/generate_$subset.log" 2>&1 \
      || { tail -5 "$out/generate_$subset.log" >&2; return 1; }
  else
    $BIN/fairseq-generate "$DATA" "${TASK[@]}" --gen-subset "$subset" \
      --path "$CKPT/checkpoint_best.pt" --beam 5 --max-len-a 0.1 --max-len-b 10 \
      --max-tokens 50000 --scoring wer "$@" \
      --results-path "$out" > "$out/generate_$subset.log" 2>&1 \
      || { tail -5 "$out/generate_$subset.log" >&2; return 1; }
  fi
  grep -E "^Generate $subset with" "$out/generate-$subset.txt" | grep -oE "WER: [0-9.]+" | cut -c6-
}

lm_weight=0 lm_summary="language model: none (LM_MINUTES=0)"
if [ "$LM_MINUTES" != 0 ]; then
  stage "language model: durnn_lm, training texts in the recogniser's pieces, ${LM_MINUTES} min"
  rm -rf "$WORK/lm"
  $BIN/python -m examples.speech_recognition.train_speech_lm --data "$DATA" \
    --save-dir "$WORK/lm" --minutes "$LM_MINUTES" > "$LOGS/train_lm.log" 2>&1 \
    || { echo "train_speech_lm failed; see $LOGS/train_lm.log"; tail -5 "$LOGS/train_lm.log"
         exit 1; }
  grep -E "\| valid on" "$LOGS/train_lm.log" | tail -1 | sed -E 's/^[0-9: -]+\| INFO \| //'
  stage "language model weight: $DECODER on dev, --lm-weight 0 $LM_WEIGHTS"
  best=$(generate dev "$RESULTS/dev_lm0") || exit 1
  base=$best
  echo "dev WER ${best} without the LM"
  for w in $LM_WEIGHTS; do
    wer=$(generate dev "$RESULTS/dev_lm$w" --lm-path "$WORK/lm/checkpoint_best.pt" \
          --lm-weight "$w") || exit 1
    echo "dev WER ${wer} with --lm-weight $w"
    if $BIN/python -c "import sys; sys.exit(not $wer < $best)"; then best=$wer lm_weight=$w; fi
  done
  lm_summary="language model: ${LM_MINUTES} min; dev WER $base without it, --lm-weight"
  lm_summary+=" $lm_weight chosen of 0 $LM_WEIGHTS (dev WER $best)"
  echo "$lm_summary"
fi

stage "evaluate: $DECODER, WER on the held-out voices and the real speech"
t0=$(now)
summary=()
for subset in "${TEST_SETS[@]}"; do
  [ -f "$DATA/$subset.tsv" ] || continue
  for w in 0 $([ "$lm_weight" = 0 ] || echo "$lm_weight"); do
    if [ "$w" = 0 ]; then out=$RESULTS lm=(); label=""; else
      out=$RESULTS/lm lm=(--lm-path "$WORK/lm/checkpoint_best.pt" --lm-weight "$w")
      label=", with the LM at --lm-weight $w"
    fi
    generate "$subset" "$out" "${lm[@]}" > /dev/null || exit 1
    total=$(grep -E "^Generate $subset with" "$out/generate-$subset.txt")
    echo "$total$label"
    per_voice=$($BIN/python -m examples.speech_recognition.wer_by_voice \
                "$DATA/$subset.tsv" "$out/generate-$subset.txt")
    echo "$per_voice"
    summary+=("$subset$label (fairseq-generate: ${total#*: }):" "$(sed 's/^/  /' <<< "$per_voice")")
  done
done
t_eval=$(( $(now) - t0 ))

stage "summary"
{
  echo "arch $arch $MODEL_ARGS ($params parameters), CPU, $THREADS threads"
  echo "training: fairseq-train done in ${fairseq_s}s, $updates updates (log: $LOGS/train.log)"
  echo "$lm_summary"
  echo "held-out voices (dev_real: real speech by group), WER %:"
  printf '%s\n' "${summary[@]}"
  echo "stage seconds: prepare $t_prepare, train $t_train, evaluate $t_eval"
} | tee "$WORK/results.txt"
echo "checkpoints: $CKPT  logs: $LOGS  generate output: $RESULTS  summary: $WORK/results.txt"
