"""``durnn_lm``: a recurrent language model, :class:`.recurrent_decoder.RecurrentDecoder` without
attention: tokens ``(B, T)`` -> embedding ``(T, B, E)`` -> stack ``(T, B, N)`` -> logits
``(B, T, V)`` (or features for adaptive softmax); incremental decoding and the carried state of
stateful training are the decoder's.

Named architectures: ``durnn_lm`` (the defaults below), ``indrnn_lm`` (IndRNN cells, batch norm
over time, bound just under 1), ``dilated_durnn_lm`` (4 DuRNN layers, dilations 1, 2, 4, 8).
"""
from dataclasses import dataclass, field
from typing import List, Optional

from fairseq.dataclass import FairseqDataclass
from fairseq.models import FairseqLanguageModel, register_model, register_model_architecture
from fairseq.utils import safe_getattr

from ..modules import StackOptions
from ..errors import check, check_positive_int, check_range
from .state_dict_check import check_state_dict_fits
from .model_config import config_of
from .recurrent_decoder import RecurrentDecoder
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


@register_model("durnn_lm", dataclass=DuRNNLanguageModelConfig)
class DuRNNLanguageModel(RecurrentStackModel, FairseqLanguageModel):
    @classmethod
    def build_model(cls, cfg: DuRNNLanguageModelConfig, task):
        resolve_time_steps(cfg, "u_time_steps", *task_training_length(task))
        cfg = config_of(DuRNNLanguageModelConfig, cfg)
        cfg.validate(len(task.target_dictionary))
        cutoff = cfg.cutoffs() if cfg.adaptive_softmax_cutoff else None
        return cls(RecurrentDecoder(
            task.target_dictionary, cfg.embed_dim, StackOptions.of(cfg),
            embed_dropout=cfg.embed_dropout, output_dropout=cfg.dropout,
            share_input_output_embed=cfg.share_input_output_embed,
            adaptive_softmax_cutoff=cutoff, adaptive_softmax_dropout=cfg.adaptive_softmax_dropout,
            adaptive_softmax_factor=cfg.adaptive_softmax_factor))

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
