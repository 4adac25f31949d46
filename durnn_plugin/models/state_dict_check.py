"""Does a checkpoint's state dict fit a model? One line saying what differs and what to do.

torch's ``load_state_dict`` lists every mismatch in a long message, and fairseq's trainer replaces
it with "Cannot load model parameters ...; please ensure that the architectures match". Calling
:func:`check_state_dict_fits` first names the first differing tensor, both shapes, and the cause:
the dictionary (a tensor whose first dimension is the dictionary size) or the model options.
"""
from typing import Iterable, Mapping

from torch import Tensor, nn

from ..errors import OneLineError


class CheckpointMismatchError(OneLineError):
    """A checkpoint whose tensors do not fit the model built from the options and the data."""


def _shape(tensor: Tensor) -> str:
    return "x".join(str(n) for n in tensor.shape) or "scalar"


def _more(names) -> str:
    return f" (and {len(names) - 1} more)" if len(names) > 1 else ""


def check_state_dict_fits(model: nn.Module, state_dict: Mapping[str, Tensor],
                          vocab_keys: Iterable[str] = (), strict: bool = True) -> None:
    """Raise :class:`CheckpointMismatchError` if ``state_dict`` cannot load into ``model``.

    ``vocab_keys``: names of tensors whose first dimension is the dictionary size; a difference
    there is reported as a dictionary mismatch. ``strict``: missing or extra names count too.
    """
    own = model.state_dict()
    options = ("build the model with the options the checkpoint was trained with "
               "(--hidden-size, --short-size, --embed-dim, --num-layers, --cell, ...)")
    for name in vocab_keys:
        if name in own and name in state_dict and own[name].shape[0] != state_dict[name].shape[0]:
            raise CheckpointMismatchError(
                f"the checkpoint was trained with a dictionary of {state_dict[name].shape[0]} "
                f"symbols, the data's dictionary has {own[name].shape[0]} ({name}): use the "
                "dict.txt the checkpoint was trained with")
    wrong = [k for k in own if k in state_dict and own[k].shape != state_dict[k].shape]
    if wrong:
        k = wrong[0]
        raise CheckpointMismatchError(
            f"the checkpoint does not fit this model: {k} is {_shape(state_dict[k])} in the "
            f"checkpoint but {_shape(own[k])} here{_more(wrong)}; {options}")
    if strict:
        missing = [k for k in own if k not in state_dict]
        extra = [k for k in state_dict if k not in own]
        if missing:
            raise CheckpointMismatchError(
                f"the checkpoint lacks {missing[0]}{_more(missing)} of this model; {options}")
        if extra:
            raise CheckpointMismatchError(
                f"the checkpoint has {extra[0]}{_more(extra)}, which this model lacks; {options}")
