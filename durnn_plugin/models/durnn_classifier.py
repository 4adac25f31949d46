"""``durnn_classifier``: sequence classification / regression on :class:`RecurrentStack`.

    front-end      tokens (B, T) -> embedding (T, B, E)     (tasks with a dictionary)
                   values (B, T, F) -> Linear(F, E) (T, B, E)   (tasks with ``input_features``)
    stack          (T, B, E) -> y (T, B, N)  (2N if --bidirectional), padding-aware
    pooling        y -> p (B, N): mean over the valid positions, or the last valid state
                   (bidirectional: forward at len - 1, backward at 0), see ..modules.pooling
    head           p -> (B, num_classes): fairseq's RobertaClassificationHead
                   (dropout, dense, activation, dropout, out_proj)

Front-end and stack are :class:`.recurrent_encoder.RecurrentEncoder`, the encoder-decoder
models' encoder too. The front-end is chosen by the task: one that sets ``input_features``
(``adding_problem``, ``pixel_sequence``) gives real-valued inputs ``src_values (B, T, F)``
(:class:`.recurrent_encoder.ValueFrontEnd`); otherwise the task's source dictionary gives token
inputs ``src_tokens (B, T)`` (``sentence_prediction``; :class:`.recurrent_encoder.TokenFrontEnd`).

Heads follow fairseq's RoBERTa conventions, so ``--criterion sentence_prediction`` works:
``model(**net_input, features_only=True, classification_head_name=name)`` returns the logits of
that head; :meth:`register_classification_head` adds one; loading a checkpoint keeps the heads
the current model has, drops (or with ``--load-checkpoint-heads`` adopts) the checkpoint's other
heads, and keeps fresh weights for a head the checkpoint lacks or has with another shape.
"""
import logging
from dataclasses import dataclass, field
from typing import Optional

from torch import Tensor, nn

from fairseq.dataclass import FairseqDataclass
from fairseq.models import FairseqEncoderModel, register_model
from fairseq.models.roberta.model import RobertaClassificationHead

from ..modules import StackOptions
from ..errors import check, check_choice, check_positive_int, check_range
from ..modules.pooling import POOLINGS, pool
from .model_config import config_of
from .recurrent_encoder import RecurrentEncoder, TokenFrontEnd, ValueFrontEnd
from .stack_updates import RecurrentStackModel
from .time_steps import resolve_time_steps, task_training_length

logger = logging.getLogger(__name__)
HEADS = "classification_heads."


@dataclass
class DuRNNClassifierConfig(FairseqDataclass, StackOptions):
    embed_dim: int = field(default=256, metadata={
        "help": "size E of the front-end output (token embedding or Linear of real-valued inputs)"})
    embed_dropout: float = field(default=0.1, metadata={"help": "dropout on the front-end output"})
    dropout: float = field(default=0.1, metadata={"help": "dropout on the stack output"})
    pooling: str = field(default="mean", metadata={
        "help": "pooling over valid positions: " + ", ".join(POOLINGS) +
                " (last: forward state at the last valid position; backward state at 0)"})
    classifier_inner_dim: Optional[int] = field(default=None, metadata={
        "help": "hidden size of classification heads (default: the pooled size)"})
    pooler_activation_fn: str = field(default="tanh", metadata={
        "help": "activation in classification heads: tanh, relu, gelu, linear"})
    pooler_dropout: float = field(default=0.0, metadata={"help": "dropout in classification heads"})
    load_checkpoint_heads: bool = field(default=False, metadata={
        "help": "adopt every classification head found in a loaded checkpoint"})
    max_positions: Optional[int] = field(default=None, metadata={
        "help": "longest input accepted (set by sentence_prediction from its --max-positions)"})

    def validate(self) -> None:
        super().validate()
        check_positive_int("embed_dim", self.embed_dim)
        check_range("embed_dropout", self.embed_dropout, 0, 1, hi_open=True)
        check_range("dropout", self.dropout, 0, 1, hi_open=True)
        check_range("pooler_dropout", self.pooler_dropout, 0, 1, hi_open=True)
        check_choice("pooling", self.pooling, POOLINGS)
        check_choice("pooler_activation_fn", self.pooler_activation_fn,
                     ("tanh", "relu", "gelu", "linear"))
        if self.classifier_inner_dim is not None:
            check_positive_int("classifier_inner_dim", self.classifier_inner_dim)


@register_model("durnn_classifier", dataclass=DuRNNClassifierConfig)
class DuRNNClassifier(RecurrentStackModel, FairseqEncoderModel):
    def __init__(self, cfg: DuRNNClassifierConfig, encoder: RecurrentEncoder):
        super().__init__(encoder)
        self.cfg = cfg
        self.classification_heads = nn.ModuleDict()

    @classmethod
    def build_model(cls, cfg: DuRNNClassifierConfig, task):
        resolve_time_steps(cfg, "u_time_steps", *task_training_length(task))
        cfg = config_of(DuRNNClassifierConfig, cfg)
        cfg.validate()
        features = getattr(task, "input_features", None)
        dictionary = None if features is not None else task.source_dictionary
        front_end = (ValueFrontEnd(features, cfg.embed_dim) if features is not None
                     else TokenFrontEnd(dictionary, cfg.embed_dim))
        return cls(cfg, RecurrentEncoder(front_end, StackOptions.of(cfg), cfg.embed_dropout,
                                         cfg.dropout, dictionary, cfg.max_positions))

    @property
    def pooled_size(self) -> int:
        return self.encoder.stack.output_size

    def forward(self, src_tokens: Optional[Tensor] = None, src_lengths: Optional[Tensor] = None,
                src_values: Optional[Tensor] = None, features_only: bool = False,
                classification_head_name: Optional[str] = None, **kwargs):
        """Returns ``(out, encoder_out)``: ``out`` is the head's ``(B, num_classes)`` output when
        ``classification_head_name`` is given, else the pooled features ``(B, N)``."""
        encoder_out = self.encoder(src_tokens, src_lengths, src_values)
        backward = self.pooled_size // 2 if self.cfg.bidirectional else 0
        pooled = pool(encoder_out["encoder_out"][0], encoder_out["src_lengths"][0],
                      self.cfg.pooling, backward)
        if classification_head_name is None:
            return pooled, encoder_out
        # the head reads position 0 of a (B, T, C) input: the pooled vector enters as (B, 1, C)
        return self.classification_heads[classification_head_name](pooled.unsqueeze(1)), encoder_out

    def register_classification_head(self, name: str, num_classes: Optional[int] = None,
                                     inner_dim: Optional[int] = None, **kwargs):
        check(isinstance(num_classes, int) and num_classes > 0, "num_classes", num_classes,
              "a positive integer")
        inner_dim = inner_dim or self.cfg.classifier_inner_dim or self.pooled_size
        if name in self.classification_heads:
            old = self.classification_heads[name]
            if (old.out_proj.out_features, old.dense.out_features) != (num_classes, inner_dim):
                logger.warning(f"re-registering head {name!r} with num_classes {num_classes} "
                               f"(was {old.out_proj.out_features}), inner_dim {inner_dim} "
                               f"(was {old.dense.out_features})")
        self.classification_heads[name] = RobertaClassificationHead(
            self.pooled_size, inner_dim, num_classes, self.cfg.pooler_activation_fn,
            self.cfg.pooler_dropout)

    def upgrade_state_dict_named(self, state_dict, name):
        """Match the checkpoint's heads to this model's before loading (see the module doc)."""
        super().upgrade_state_dict_named(state_dict, name)
        prefix = (name + "." if name else "") + HEADS
        saved = {}
        for key in state_dict:
            if key.startswith(prefix):
                head = key[len(prefix):].split(".")[0]
                saved[head] = (state_dict[f"{prefix}{head}.out_proj.weight"].size(0),
                               state_dict[f"{prefix}{head}.dense.weight"].size(0))
        for head, (num_classes, inner_dim) in saved.items():
            if self.cfg.load_checkpoint_heads:
                if head not in self.classification_heads:
                    self.register_classification_head(head, num_classes, inner_dim)
                continue
            current = self.classification_heads[head] if head in self.classification_heads else None
            if current is None or (current.out_proj.out_features,
                                   current.dense.out_features) != (num_classes, inner_dim):
                logger.warning(f"not loading classification head {head!r} of the checkpoint "
                               f"(num_classes {num_classes}, inner_dim {inner_dim}): "
                               "this model has no head of that name and shape")
                for key in [k for k in state_dict if k.startswith(f"{prefix}{head}.")]:
                    del state_dict[key]
        for key, value in self.classification_heads.state_dict().items():
            state_dict.setdefault(prefix + key, value)
