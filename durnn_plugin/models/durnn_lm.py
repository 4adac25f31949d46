"""``durnn_lm``: a recurrent language model on :class:`~durnn_plugin.modules.RecurrentStack`.

tokens ``(B, T)`` -> embedding ``(T, B, E)`` -> stack ``(T, B, N)`` -> logits ``(B, T, V)``
(or features for adaptive softmax). Right-padded batches are handled by lengths, so padding
never changes the scores of real tokens. Incremental decoding keeps every layer's state in
``incremental_state`` (tensors ``(d, B, C)``, batch on dim 1) and feeds one token per step;
``reorder_incremental_state`` selects beam rows with ``index_select``. Stateful truncated BPTT
(task ``durnn_language_modeling``) passes ``carried_state``, a box whose ``state`` (``None``: zeros)
the stack starts from and which receives the final state, detached.

Named architectures: ``durnn_lm`` (the defaults below), ``indrnn_lm`` (IndRNN cells, batch norm
over time, bound just under 1), ``dilated_durnn_lm`` (4 DuRNN layers, dilations 1, 2, 4, 8).
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import torch
from torch import Tensor, nn

from fairseq.dataclass import FairseqDataclass
from fairseq.models import FairseqLanguageModel, register_model, register_model_architecture
from fairseq.modules import AdaptiveSoftmax
from fairseq.utils import safe_getattr

from ..modules import RecurrentStack, StackOptions
from ..errors import check, check_positive_int, check_range
from .state_dict_check import check_state_dict_fits
from .stack_state import StackStateDecoder, right_padded_lengths
from .stack_updates import RecurrentStackModel
from .time_steps import resolve_time_steps, task_training_length


@dataclass
class DuRNNLanguageModelConfig(FairseqDataclass, StackOptions):
    embed_dim: int = field(default=512, metadata={"help": "token embedding size E"})
    dropout: float = field(default=0.1, metadata={"help": "dropout on the stack output"})
    embed_dropout: float = field(default=0.1, metadata={"help": "dropout on token embeddings"})
    share_input_output_embed: bool = field(default=False, metadata={
        "help": "tie input and output embeddings (a projection N -> E is added if sizes differ)"})
    adaptive_softmax_cutoff: Optional[str] = field(default=None, metadata={
        "help": "comma-separated adaptive softmax cutoffs, e.g. 2000,10000 "
                "(use with --criterion adaptive_loss)"})
    adaptive_softmax_dropout: float = field(default=0.0, metadata={
        "help": "dropout in the adaptive softmax tail projections"})
    adaptive_softmax_factor: float = field(default=4.0, metadata={
        "help": "size reduction factor of each adaptive softmax tail band"})

    def validate(self, vocab_size: Optional[int] = None) -> None:
        super().validate()
        check_positive_int("embed_dim", self.embed_dim)
        check_range("dropout", self.dropout, 0, 1, hi_open=True)
        check_range("embed_dropout", self.embed_dropout, 0, 1, hi_open=True)
        check_range("adaptive_softmax_dropout", self.adaptive_softmax_dropout, 0, 1, hi_open=True)
        check_range("adaptive_softmax_factor", self.adaptive_softmax_factor, 1, float("inf"))
        if self.adaptive_softmax_cutoff:
            cutoff = self.cutoffs()
            check(cutoff is not None and cutoff == sorted(set(cutoff)) and cutoff[0] > 0
                  and (vocab_size is None or cutoff[-1] < vocab_size),
                  "adaptive_softmax_cutoff", self.adaptive_softmax_cutoff,
                  f"increasing positive integers below the vocabulary size ({vocab_size})")

    def cutoffs(self) -> Optional[List[int]]:
        try:
            return [int(v) for v in str(self.adaptive_softmax_cutoff).split(",")]
        except ValueError:
            return None


class DuRNNLanguageModelDecoder(StackStateDecoder):
    def __init__(self, cfg: DuRNNLanguageModelConfig, dictionary):
        super().__init__(dictionary)
        self.padding_idx = dictionary.pad()
        self.embed_tokens = nn.Embedding(len(dictionary), cfg.embed_dim, self.padding_idx)
        nn.init.normal_(self.embed_tokens.weight, mean=0, std=cfg.embed_dim ** -0.5)
        nn.init.zeros_(self.embed_tokens.weight[self.padding_idx])
        self.embed_dropout = nn.Dropout(cfg.embed_dropout)
        self.stack = RecurrentStack(StackOptions(**{k: getattr(cfg, k) for k in
                                                    StackOptions.__dataclass_fields__}),
                                    cfg.embed_dim)
        self.output_dropout = nn.Dropout(cfg.dropout)
        size = self.stack.output_size
        self.adaptive_softmax = None
        self.project_out = None
        self.output_weight = None
        if cfg.adaptive_softmax_cutoff:
            self.adaptive_softmax = AdaptiveSoftmax(len(dictionary), size, cfg.cutoffs(),
                                                    cfg.adaptive_softmax_dropout,
                                                    factor=cfg.adaptive_softmax_factor)
        elif cfg.share_input_output_embed:
            if size != cfg.embed_dim:
                self.project_out = nn.Linear(size, cfg.embed_dim, bias=False)
        else:
            self.output_weight = nn.Parameter(torch.empty(len(dictionary), size))
            nn.init.normal_(self.output_weight, mean=0, std=size ** -0.5)

    def forward(self, prev_output_tokens: Tensor, src_lengths: Optional[Tensor] = None,
                incremental_state: Optional[Dict[str, Dict[str, Optional[Tensor]]]] = None,
                features_only: bool = False, carried_state=None, **unused):
        x, extra = self.extract_features(prev_output_tokens, incremental_state, carried_state)
        if not features_only:
            x = self.output_layer(x)
        return x, extra

    def extract_features(self, prev_output_tokens: Tensor,
                         incremental_state: Optional[Dict[str, Dict[str, Optional[Tensor]]]] = None,
                         carried_state=None, **unused):
        """tokens ``(B, T)`` -> features ``(B, T, N or E)``. ``carried_state``: an object with a
        ``state`` attribute (per-layer tuples of ``(d, B, C)`` tensors or ``None``) to start from;
        the final state is stored back there, detached and copied into its own memory."""
        state = None
        if incremental_state is not None:
            prev_output_tokens = prev_output_tokens[:, -1:]
            state = self.get_stack_state(incremental_state)
        elif carried_state is not None:
            state = carried_state.state
        lengths = None if incremental_state is not None else \
            right_padded_lengths(prev_output_tokens, self.padding_idx)
        x = self.embed_dropout(self.embed_tokens(prev_output_tokens)).transpose(0, 1)
        y, state = self.stack(x, lengths, state)
        if incremental_state is not None:
            self.set_stack_state(incremental_state, state)
        elif carried_state is not None:
            # clone: a slice of the output would keep the whole (T, B, C) storage alive
            carried_state.state = [tuple(t.detach().clone() for t in layer) for layer in state]
        y = self.output_dropout(y).transpose(0, 1)
        if self.project_out is not None:
            y = self.project_out(y)
        return y, {"attn": [None], "inner_states": [y]}

    def output_layer(self, features: Tensor) -> Tensor:
        if self.adaptive_softmax is not None:
            return features
        weight = self.embed_tokens.weight if self.output_weight is None else self.output_weight
        return nn.functional.linear(features, weight)

    def max_positions(self):
        """A recurrent model has no position limit: fairseq must not drop samples longer than the
        training blocks (eval-lm with longer ``--tokens-per-sample`` scores every token)."""
        return int(1e6)


@register_model("durnn_lm", dataclass=DuRNNLanguageModelConfig)
class DuRNNLanguageModel(RecurrentStackModel, FairseqLanguageModel):
    @classmethod
    def build_model(cls, cfg: DuRNNLanguageModelConfig, task):
        resolve_time_steps(cfg, "u_time_steps", *task_training_length(task))
        if not isinstance(cfg, DuRNNLanguageModelConfig):  # a DictConfig from hydra or a checkpoint
            known = DuRNNLanguageModelConfig.__dataclass_fields__
            cfg = DuRNNLanguageModelConfig(**{k: v for k, v in dict(cfg).items() if k in known})
        cfg.validate(len(task.target_dictionary))
        return cls(DuRNNLanguageModelDecoder(cfg, task.target_dictionary))

    def load_state_dict(self, state_dict, strict=True, model_cfg=None, args=None):
        """A checkpoint that does not fit (other sizes, another dictionary) is refused with one
        line naming the tensor and the cause, before torch's long report."""
        check_state_dict_fits(self, state_dict, strict=strict,
                              vocab_keys=["decoder.embed_tokens.weight", "decoder.output_weight"])
        return super().load_state_dict(state_dict, strict, model_cfg, args)


@register_model_architecture("durnn_lm", "indrnn_lm")
def indrnn_lm(cfg):
    cfg.cell = safe_getattr(cfg, "cell", "indrnn")
    cfg.norm = safe_getattr(cfg, "norm", "batch")
    cfg.u_gamma = safe_getattr(cfg, "u_gamma", 0.9)


@register_model_architecture("durnn_lm", "dilated_durnn_lm")
def dilated_durnn_lm(cfg):
    cfg.num_layers = safe_getattr(cfg, "num_layers", 4)
    cfg.dilation_base = safe_getattr(cfg, "dilation_base", 2)
