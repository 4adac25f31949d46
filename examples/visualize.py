"""Plots of what a trained DuRNN / IndRNN model does, from a fairseq checkpoint.

    python examples/visualize.py --checkpoint CKPT [--data DATA_DIR] [--subset valid]
                                 [--index 0] [--out DIR]

Loads the model and its task with fairseq (``--data`` overrides the data directory stored in the
checkpoint), runs one example of ``--subset`` (item ``--index``) through the model with every
recurrent stack traced (:func:`durnn_plugin.modules.record_internals`) and writes to ``--out``:

* ``u_hist.png``: histogram of the learned recurrent weights ``u`` of each layer (as the IndRNN
  paper shows them), with the bound ``γ^{1/T}``;
* ``gate.png`` (DuRNN layers): the selection gate ``g_t`` per short-term neuron over time for
  that example (rows: neurons, columns: time steps);
* ``contribution.png`` (DuRNN layers): the size of the two parts of the module output over time,
  ``‖s_t‖₂`` (short-term) and ``‖h_t‖₂`` (long-term), for that example.

Works for any model of the plugin whose task can collate an item of ``--subset``.
"""
import argparse
import os
from contextlib import ExitStack

import matplotlib
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from fairseq import checkpoint_utils  # noqa: E402

import durnn_plugin  # noqa: E402,F401  (registers the plugin's models and tasks)
from durnn_plugin.models.stack_updates import recurrent_stacks  # noqa: E402
from durnn_plugin.modules import record_internals  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--data", help="data directory (default: the one in the checkpoint)")
    parser.add_argument("--subset", default="valid")
    parser.add_argument("--index", type=int, default=0, help="which item of the subset")
    parser.add_argument("--out", default="visualize")
    return parser.parse_args(argv)


def load(args):
    overrides = {"data": args.data} if args.data else {}
    models, cfg, task = checkpoint_utils.load_model_ensemble_and_task([args.checkpoint],
                                                                      arg_overrides=overrides)
    task.load_dataset(args.subset)
    dataset = task.dataset(args.subset)
    if not 0 <= args.index < len(dataset):
        raise SystemExit(f"visualize.py: error: --index={args.index}: {args.subset} has "
                         f"{len(dataset)} items")
    return models[0].eval(), dataset.collater([dataset[args.index]])


def trace(model, sample):
    """``{"<prefix><layer>": {"short"|"gate"|"long"|...: (T, C)}}`` for batch item 0."""
    with torch.no_grad(), ExitStack() as scope:
        records = {prefix: scope.enter_context(record_internals(stack))
                   for prefix, stack in recurrent_stacks(model).items()}
        model(**sample["net_input"])
    return {prefix + layer: {k: v[:, 0].float() for k, v in internals.items()}
            for prefix, layers in records.items() for layer, internals in layers.items()}


def layer_cells(model):
    return {prefix + name: getattr(cell, "cell", cell)  # unwrap Dilated
            for prefix, stack in recurrent_stacks(model).items()
            for name, cell in stack.layer_cells().items()}


def plot_u(model, path):
    cells = {n: c for n, c in layer_cells(model).items() if hasattr(c, "u")}
    fig, axes = plt.subplots(1, len(cells), figsize=(3.2 * len(cells), 2.8), squeeze=False)
    for ax, (name, cell) in zip(axes[0], cells.items()):
        u = cell.u.detach().float().cpu()  # projected after every optimiser step
        ax.hist(u.numpy(), bins=40, color="tab:blue")
        ax.axvline(cell.u_bound, color="tab:red", linestyle="--", label="bound γ^(1/T)")
        ax.set_title(f"{name}: u ({u.numel()} neurons)")
        ax.set_xlabel("u")
    axes[0][0].set_ylabel("neurons")
    axes[0][0].legend(fontsize=7)
    save(fig, path)


def per_layer_rows(traced, key, row_height):
    """A figure with one row per layer whose trace has ``key``: ``(fig, [(ax, name, trace)])``."""
    layers = {n: t for n, t in traced.items() if key in t}
    fig, axes = plt.subplots(len(layers), 1, figsize=(9, row_height * len(layers)), squeeze=False)
    axes[-1, 0].set_xlabel("time step")
    return fig, [(ax, name, t) for ax, (name, t) in zip(axes[:, 0], layers.items())]


def save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_gates(traced, path):
    fig, rows = per_layer_rows(traced, "gate", 2.4)
    for ax, name, t in rows:
        image = ax.imshow(t["gate"].T.cpu().numpy(), aspect="auto", vmin=0, vmax=1,
                          cmap="viridis", interpolation="nearest")
        ax.set_title(f"{name}: selection gate g_t")
        ax.set_ylabel("short-term neuron")
        fig.colorbar(image, ax=ax)
    save(fig, path)


def plot_contribution(traced, path):
    fig, rows = per_layer_rows(traced, "short", 2.2)
    for ax, name, t in rows:
        ax.plot(t["short"].norm(dim=-1).cpu().numpy(), label="‖s_t‖ short-term")
        ax.plot(t["long"].norm(dim=-1).cpu().numpy(), label="‖h_t‖ long-term")
        ax.set_title(name)
        ax.legend(fontsize=7)
    save(fig, path)


def main(argv=None):
    args = parse_args(argv)
    model, sample = load(args)
    traced = trace(model, sample)
    os.makedirs(args.out, exist_ok=True)
    written = [os.path.join(args.out, "u_hist.png")]
    plot_u(model, written[0])
    if any("gate" in t for t in traced.values()):
        written.append(os.path.join(args.out, "gate.png"))
        plot_gates(traced, written[-1])
    if any("short" in t for t in traced.values()):
        written.append(os.path.join(args.out, "contribution.png"))
        plot_contribution(traced, written[-1])
    for path in written:
        print(path)


if __name__ == "__main__":
    main()
