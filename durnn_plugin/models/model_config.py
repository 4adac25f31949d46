"""The one way a model turns what fairseq hands ``build_model`` into its config dataclass."""
from dataclasses import fields
from typing import Type, TypeVar

Config = TypeVar("Config")


def config_of(config_class: Type[Config], cfg) -> Config:
    """``cfg`` itself when it is a ``config_class``, else a ``config_class`` built from the
    fields it knows of a DictConfig (hydra, a checkpoint) or another config object."""
    if isinstance(cfg, config_class):
        return cfg
    values = cfg if hasattr(cfg, "keys") else vars(cfg)
    known = {f.name for f in fields(config_class)}
    return config_class(**{k: values[k] for k in values.keys() if k in known})
