"""Recurrent state carried from one segment of a split's streams to the next.

A :class:`StateBox` travels in ``sample["net_input"]["carried_state"]``; the model starts from
``box.state`` (``None``: zeros) and stores its final, detached state there, a list of per-layer
tuples of tensors ``(d, B, C)``. It is a plain object, not a dict, so that fairseq's
``move_to_cuda`` and DDP, which copy dicts, hand the model the same box.

A :class:`StateCarrier` gives segment ``k`` of a stream group (see :mod:`.streams`; one group
unless ``--stream-groups`` says otherwise) the box that segment ``k - 1`` of the same group
filled. Any other segment index (segment 0 at the start of an epoch or of a validation pass, a
resumed epoch) gets a fresh box, and with ``reset_prob > 0`` each segment gets a fresh box with
that probability, drawn from a ``random.Random(seed)`` of the carrier's own.

:meth:`StateCarrier.state_dict` (per group the next segment index and the box's tensors on the
CPU, and the generator's state: tensors, ints, lists and tuples only, so torch's weights-only
loader reads them back) lets a checkpoint taken mid-epoch resume with exactly the state training
had reached.
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
        self.boxes: Dict[int, StateBox] = {}  # group -> the box its last segment filled
        self.next_segments: Dict[int, int] = {}

    def box_for(self, segment: int, group: int = 0) -> StateBox:
        """The box segment ``segment`` of ``group`` starts from; the same box if it follows the
        group's last one."""
        reset = self.reset_prob > 0 and self.rng.random() < self.reset_prob
        if reset or segment != self.next_segments.get(group, 0) or group not in self.boxes:
            self.boxes[group] = StateBox()
        self.next_segments[group] = segment + 1
        return self.boxes[group]

    def state_dict(self) -> Dict:
        groups = []
        for group, box in sorted(self.boxes.items()):
            state = None if box.state is None else [tuple(t.cpu() for t in l) for l in box.state]
            groups.append((group, self.next_segments[group], state))
        return {"groups": groups, "rng": self.rng.getstate()}

    def load_state_dict(self, saved: Dict) -> None:
        self.rng.setstate(saved["rng"])
        self.boxes, self.next_segments = {}, {}
        groups = saved.get("groups")
        if groups is None:  # written before stream groups existed: one group
            groups = [(0, saved["next_segment"], saved["state"])]
        for group, next_segment, state in groups:
            self.boxes[group] = StateBox()
            self.boxes[group].state = None if state is None else [tuple(l) for l in state]
            self.next_segments[group] = next_segment
