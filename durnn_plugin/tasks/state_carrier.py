"""Recurrent state carried from one segment of a split's streams to the next.

A :class:`StateBox` travels in ``sample["net_input"]["carried_state"]``; the model starts from
``box.state`` (``None``: zeros) and stores its final, detached state there, a list of per-layer
tuples of tensors ``(d, B, C)``. It is a plain object, not a dict, so that fairseq's
``move_to_cuda`` and DDP, which copy dicts, hand the model the same box.

A :class:`StateCarrier` gives segment ``k`` the box that segment ``k - 1`` filled. Any other
segment index (segment 0 at the start of an epoch or of a validation pass, a resumed epoch) gets
a fresh box, and with ``reset_prob > 0`` each segment gets a fresh box with that probability,
drawn from a ``random.Random(seed)`` of the carrier's own.

:meth:`StateCarrier.state_dict` (the next segment index, the box's tensors on the CPU and the
generator's state: tensors, ints and tuples only, so torch's weights-only loader reads them back)
lets a checkpoint taken mid-epoch resume with exactly the state training had reached.
"""
import random
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor


class StateBox:
    """The state handed from one forward to the next: ``state`` is ``None`` or the stack's
    final state, one tuple of ``(d, B, C)`` tensors per layer."""

    def __init__(self):
        self.state: Optional[List[Tuple[Tensor, ...]]] = None

    def to(self, device: torch.device) -> "StateBox":
        """Move the state's tensors to ``device`` (in place; a no-op where they already are)."""
        if self.state is not None:
            self.state = [tuple(t.to(device) for t in layer) for layer in self.state]
        return self


class StateCarrier:
    def __init__(self, reset_prob: float = 0.0, seed: int = 1):
        self.reset_prob = reset_prob
        self.rng = random.Random(seed)
        self.box = StateBox()
        self.next_segment = 0

    def box_for(self, segment: int) -> StateBox:
        """The box segment ``segment`` starts from; the same box if it follows the last one."""
        reset = self.reset_prob > 0 and self.rng.random() < self.reset_prob
        if reset or segment != self.next_segment:
            self.box = StateBox()
        self.next_segment = segment + 1
        return self.box

    def state_dict(self) -> Dict:
        state = self.box.state
        return {"next_segment": self.next_segment, "rng": self.rng.getstate(),
                "state": None if state is None else [tuple(t.cpu() for t in l) for l in state]}

    def load_state_dict(self, saved: Dict) -> None:
        self.next_segment = saved["next_segment"]
        self.rng.setstate(saved["rng"])
        self.box = StateBox()
        self.box.state = None if saved["state"] is None else [tuple(l) for l in saved["state"]]
