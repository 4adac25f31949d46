#!/usr/bin/env python3
"""Score a checkpoint on a split with the task and criterion it was trained with.

    python examples/classification/evaluate.py --path CKPT [--subset test] [--data DIR]

Prints one line ``SUBSET: n=N loss=... accuracy=...`` (``mse=...`` for ``--criterion mse``): the
metrics of the training criterion (``sentence_prediction``: accuracy in %; ``mse``: mean squared
error), aggregated over the whole split with fairseq's own ``valid_step`` and ``reduce_metrics``.
(``fairseq-validate --task sentence_prediction`` cannot parse that task's options: its parser
has no criterion group for ``criterion.classification_head_name``.)
"""
import argparse

import torch

import durnn_plugin  # noqa: F401  (registers the plugin's models, tasks and criterions)
from fairseq import checkpoint_utils, utils
from fairseq.logging import metrics


def evaluate(path: str, subset: str, data=None, batch_size: int = 32) -> dict:
    overrides = {"data": data} if data else {}
    models, cfg, task = checkpoint_utils.load_model_ensemble_and_task([path], arg_overrides=overrides)
    model = models[0].eval()
    use_cuda = torch.cuda.is_available()  # as fairseq-validate: the GPU when there is one
    if use_cuda:
        model.cuda()
    criterion = task.build_criterion(cfg.criterion).eval()
    task.load_dataset(subset, combine=False, epoch=1)
    batches = task.get_batch_iterator(task.dataset(subset), max_sentences=batch_size,
                                      max_positions=utils.resolve_max_positions(
                                          task.max_positions(), model.max_positions()),
                                      ignore_invalid_inputs=False, num_workers=0,
                                      ).next_epoch_itr(shuffle=False)
    with torch.no_grad(), metrics.aggregate(new_root=True) as agg:
        logs = [task.valid_step(utils.move_to_cuda(sample) if use_cuda else sample, model,
                                criterion)[2] for sample in batches]
        task.reduce_metrics(logs, criterion)
        values = agg.get_smoothed_values()
    values["n"] = sum(int(log.get("nsentences", 0)) for log in logs)
    return values


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--path", required=True, help="checkpoint file")
    parser.add_argument("--subset", default="test")
    parser.add_argument("--data", default=None, help="data directory (default: the checkpoint's)")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    values = evaluate(args.path, args.subset, args.data, args.batch_size)
    shown = " ".join(f"{k}={v:.5g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in values.items() if k in ("n", "loss", "accuracy", "mse"))
    print(f"{args.subset}: {shown}")


if __name__ == "__main__":
    main()
