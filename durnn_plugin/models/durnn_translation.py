"""``durnn``: the same encoder-decoder for fairseq's ``translation`` task (token input).

source tokens -> embedding -> bidirectional stack -> attention decoder (see
:mod:`.seq2seq_base`). Left-padded sources (the task's default) are moved to the right first.

Named architectures: ``durnn`` (the defaults: encoder 4 x 320 per direction, decoder 2 x 512),
``durnn_s`` (small: encoder 2 x 256, decoder 1 x 256, 128-dim embeddings).
"""
from dataclasses import dataclass

from fairseq.models import register_model, register_model_architecture

from .recurrent_encoder import TokenFrontEnd
from .seq2seq_base import DuRNNSeq2SeqConfig, DuRNNSeq2SeqModel, small_architecture


@dataclass
class DuRNNTranslationConfig(DuRNNSeq2SeqConfig):
    pass


@register_model("durnn", dataclass=DuRNNTranslationConfig)
class DuRNNTranslationModel(DuRNNSeq2SeqModel):
    config_class = DuRNNTranslationConfig

    @classmethod
    def build_front_end(cls, cfg: DuRNNTranslationConfig, task) -> TokenFrontEnd:
        return TokenFrontEnd(task.source_dictionary, cfg.encoder_embed_dim)


@register_model_architecture("durnn", "durnn_s")
def durnn_s(cfg):
    small_architecture(cfg, encoder_num_layers=2)
