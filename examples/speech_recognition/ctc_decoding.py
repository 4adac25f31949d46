"""CTC decoders of the streaming recogniser, incremental over chunks of output frames.

Each decoder takes the log-probabilities ``lprobs (t, V)`` of one utterance chunk by chunk
(``t >= 0`` new frames, fp32, any device; index ``blank`` is CTC's blank, 0 = ``<s>`` in the
recogniser's dictionary): ``push(lprobs)`` returns the best token ids so far (a list of int),
``finish()`` the final ids and starts the next utterance. The state between pushes is the
state after the last frame, so any chunking of the same frames gives the same ids as one push.

* :class:`GreedyCTC`: the best path: argmax per frame, repeats collapsed (across chunk
  boundaries too), blanks dropped.
* :class:`PrefixBeamCTC`: the CTC prefix beam search. Per prefix ``l`` (last token ``e``) it
  keeps ``p_b(l)`` and ``p_nb(l)``, the probabilities of the alignments of the frames so far
  that collapse to ``l`` and end in a blank / in a non-blank; at a frame with probabilities
  ``y``::

      p_b'(l)    += (p_b(l) + p_nb(l)) y_blank
      p_nb'(l)   += p_nb(l) y_e                   (e repeated without a blank collapses)
      p_nb'(l+c) += p_b(l) y_c                    if c == e (a repeat needs a blank between)
                    (p_b(l) + p_nb(l)) y_c        otherwise

  summed over every prefix of the beam, so alignments reaching the same prefix merge. The
  ``beam`` prefixes of highest ``score(l) = log(p_b + p_nb) + lm_weight log p_LM(l) +
  token_bonus |l|`` are kept; ``finish()`` adds ``lm_weight log p_LM(</s> | l)``. Extensions
  are pruned per frame to the tokens ``c`` with ``log y_c >= max log y - prune_threshold``
  (and, with ``prune_top_k``, among the ``k`` most probable, ties at the k-th kept): without
  the LM and the token bonus, a pruned extension of ``l`` adds at least ``prune_threshold -
  log 2`` less than one that is kept (``l`` itself, or ``l`` extended by the frame's best
  token). The blank and repeat terms always use the frame's full ``y``. Beam 1 keeps one
  prefix with all its alignments, not the best path: it equals :class:`GreedyCTC` where every
  frame's most probable token has probability above 3/4, and may differ on flatter frames.
* :class:`LMScorer`: shallow fusion with a ``durnn_lm`` (``train_speech_lm.py``) in the
  recogniser's dictionary: the prefixes that enter the beam in a frame get their LM state and
  next-token log-probabilities in one batched incremental step of the LM (their parents'
  stack states concatenated on the batch dimension, see :mod:`.recurrent_decoder`).
"""
import math
import weakref
from typing import Dict, List, NamedTuple, Optional, Sequence

import torch
from fairseq.data import Dictionary

from durnn_plugin.errors import check, check_positive_int
from examples.speech_recognition.transcribe import load_language_model

NEG_INF = float("-inf")


def logaddexp(a: float, b: float) -> float:
    """``log(exp(a) + exp(b))`` of two floats (``-inf`` allowed)."""
    if a < b:
        a, b = b, a
    return a if b == NEG_INF else a + math.log1p(math.exp(b - a))


def check_frames(lprobs: torch.Tensor, blank: int) -> torch.Tensor:
    """``lprobs`` as a ``(t, V)`` float tensor, or ValueError in one line."""
    if not (torch.is_tensor(lprobs) and lprobs.dim() == 2 and lprobs.is_floating_point()
            and lprobs.shape[1] > blank):
        shape = tuple(lprobs.shape) if torch.is_tensor(lprobs) else type(lprobs).__name__
        raise ValueError(f"lprobs {shape}: must be a (t, V) float tensor of CTC "
                         f"log-probabilities with V > blank ({blank})")
    return lprobs.detach().float()


class GreedyCTC:
    """Best-path decoding (module docstring); ``blank``: the blank's index."""

    def __init__(self, blank: int = 0):
        check(isinstance(blank, int) and blank >= 0, "blank", blank, "an index >= 0")
        self.blank = blank
        self.reset()

    def reset(self) -> None:
        self.ids: List[int] = []
        self.last = self.blank  # the previous frame's argmax

    def push(self, lprobs: torch.Tensor) -> List[int]:
        """``lprobs (t, V)`` -> the ids so far."""
        best = check_frames(lprobs, self.blank).argmax(-1)
        if len(best):
            previous = torch.cat([best.new_tensor([self.last]), best[:-1]])
            self.ids += best[(best != previous) & (best != self.blank)].tolist()
            self.last = int(best[-1])
        return list(self.ids)

    def finish(self) -> List[int]:
        ids = self.ids
        self.reset()
        return ids


class Prefix:
    """A node of the tree of prefixes: ``token`` appended to ``parent`` (the root, the empty
    prefix, has neither). Equal prefixes are one node (:meth:`child`), so prefixes are compared
    and hashed by identity, in a time that does not grow with their length; a node lives while
    the beam holds it or one of its extensions."""
    __slots__ = ("parent", "token", "children", "__weakref__")

    def __init__(self, parent: Optional["Prefix"] = None, token: int = -1):
        self.parent, self.token = parent, token
        self.children: "weakref.WeakValueDictionary[int, Prefix]" = weakref.WeakValueDictionary()

    def child(self, token: int) -> "Prefix":
        node = self.children.get(token)
        if node is None:
            node = self.children[token] = Prefix(self, token)
        return node

    def ids(self) -> List[int]:
        out, node = [], self
        while node.parent is not None:
            out.append(node.token)
            node = node.parent
        return out[::-1]


class LMState(NamedTuple):
    """A prefix seen by the LM: ``stack``, the stack state after it (per layer a tuple of
    ``(d_l, 1, C)`` tensors), and ``log_probs (V,)``, ``log p_LM(. | prefix)`` (float64, on
    the CPU)."""
    stack: List[tuple]
    log_probs: torch.Tensor


class LMScorer:
    """A ``durnn_lm`` (any fairseq LM whose decoder is a :class:`RecurrentDecoder`) whose
    dictionary is the recogniser's ``dictionary`` index for index (else ValueError in one line).
    A prefix starts after ``</s>``, as the LM was trained (``--sample-break-mode eos``)."""

    def __init__(self, lm: torch.nn.Module, dictionary: Dictionary):
        symbols = lm.decoder.dictionary.symbols
        if symbols != dictionary.symbols:
            first = next((i for i, (a, b) in enumerate(zip(symbols, dictionary.symbols))
                          if a != b), min(len(symbols), len(dictionary.symbols)))
            raise ValueError(f"LM dictionary ({len(symbols)} symbols) is not the recogniser's "
                             f"({len(dictionary)} symbols) index for index (first difference "
                             f"at index {first}); train the LM with train_speech_lm.py on the "
                             "recogniser's data directory")
        self.lm = lm.eval()
        self.eos = dictionary.eos()
        self.size = len(dictionary)
        self.device = next(lm.parameters()).device
        self.initial = self.step(None, [self.eos])[0]  # the empty prefix

    @classmethod
    def load(cls, lm_path: str, data: str, dictionary: Dictionary) -> "LMScorer":
        """The checkpoint ``lm_path`` as :func:`transcribe.load_language_model` loads it for the
        recogniser's data directory ``data``."""
        return cls(load_language_model(lm_path, data, dictionary), dictionary)

    def extend(self, parents: Sequence[LMState], tokens: Sequence[int]) -> List[LMState]:
        """The states of ``parents[i]`` extended by ``tokens[i]``: one LM step over the batch
        ``B = len(tokens)``."""
        stack = [tuple(torch.cat(parts, 1) for parts in zip(*layers))
                 for layers in zip(*(p.stack for p in parents))]
        return self.step(stack, tokens)

    @torch.no_grad()
    def step(self, stack: Optional[List[tuple]], tokens: Sequence[int]) -> List[LMState]:
        """One incremental step of the LM from the batched stack state ``stack`` (per layer a
        tuple of ``(d_l, B, C)`` tensors; ``None``: zeros) on ``tokens (B,)``."""
        incremental_state: Dict[str, Dict] = {}
        if stack is not None:
            self.lm.decoder.set_stack_state(incremental_state, stack)
        out = self.lm(torch.tensor(tokens, device=self.device)[:, None],
                      incremental_state=incremental_state)
        rows = self.lm.get_normalized_probs(out, log_probs=True)[:, -1].double().cpu()
        stack = self.lm.decoder.get_stack_state(incremental_state)
        return [LMState([tuple(t[:, i:i + 1] for t in layer) for layer in stack], row)
                for i, row in enumerate(rows)]


class PrefixBeamCTC:
    """CTC prefix beam search with optional LM fusion (module docstring). ``beam``: prefixes
    kept per frame; ``lm``: an :class:`LMScorer` (``None``: no LM) added with ``lm_weight``;
    ``token_bonus``: added per token of a prefix (counters the LM's preference for short
    outputs); ``prune_threshold`` (> 0, ``inf``: none) and ``prune_top_k`` (``None``: no cap):
    the tokens a prefix is extended by in a frame."""

    def __init__(self, beam: int, blank: int = 0, lm: Optional[LMScorer] = None,
                 lm_weight: float = 0.0, token_bonus: float = 0.0, prune_threshold: float = 10.0,
                 prune_top_k: Optional[int] = None):
        check_positive_int("beam", beam)
        check(isinstance(blank, int) and blank >= 0, "blank", blank, "an index >= 0")
        check(math.isfinite(lm_weight), "lm_weight", lm_weight, "a finite number")
        check(math.isfinite(token_bonus), "token_bonus", token_bonus, "a finite number")
        check(prune_threshold > 0, "prune_threshold", prune_threshold, "> 0 (inf: no pruning)")
        if prune_top_k is not None:
            check_positive_int("prune_top_k", prune_top_k)
        self.beam, self.blank, self.lm, self.lm_weight = beam, blank, lm, lm_weight
        self.token_bonus, self.prune_threshold, self.prune_top_k = (token_bonus, prune_threshold,
                                                                    prune_top_k)
        self.reset()

    def reset(self) -> None:
        # prefix -> [log p_b, log p_nb, lm_weight log p_LM(prefix) + token_bonus |prefix|],
        # best first
        root = Prefix()
        self.hyps: Dict[Prefix, List[float]] = {root: [0.0, NEG_INF, 0.0]}
        self.lm_states: Dict[Prefix, LMState] = {root: self.lm.initial} if self.lm else {}

    def push(self, lprobs: torch.Tensor) -> List[int]:
        """``lprobs (t, V)`` -> the ids of the best prefix so far."""
        lprobs = check_frames(lprobs, self.blank).double().cpu()
        if self.lm is not None and lprobs.shape[1] != self.lm.size:
            raise ValueError(f"lprobs {tuple(lprobs.shape)}: V must be the size of the LM's "
                             f"dictionary ({self.lm.size}), the recogniser's")
        for y, row, allowed in zip(lprobs, lprobs.tolist(), self.allowed(lprobs)):
            self.step(y, row, allowed)
        return next(iter(self.hyps)).ids()

    def finish(self) -> List[int]:
        """The best prefix with the LM's ``</s>`` added; the decoder starts afresh."""
        def final(prefix: Prefix) -> float:
            p_b, p_nb, fused = self.hyps[prefix]
            end = self.lm_weight * float(self.lm_states[prefix].log_probs[self.lm.eos]) \
                if self.lm else 0.0
            return logaddexp(p_b, p_nb) + fused + end
        best = max(self.hyps, key=final)
        self.reset()
        return best.ids()

    def allowed(self, lprobs: torch.Tensor) -> torch.Tensor:
        """``(t, V)`` mask of the tokens that pass pruning in each frame of ``lprobs (t, V)``
        (never the blank)."""
        keep = lprobs >= lprobs.max(-1, keepdim=True).values - self.prune_threshold
        if self.prune_top_k is not None and self.prune_top_k < lprobs.shape[1]:
            keep &= lprobs >= lprobs.topk(self.prune_top_k, -1).values[:, -1:]
        keep[:, self.blank] = False
        return keep

    def step(self, y: torch.Tensor, row: List[float], allowed: torch.Tensor) -> None:
        """One frame: ``y (V,)`` its log-probabilities (``row``: the same as floats),
        ``allowed (V,)`` the tokens a prefix may be extended by.

        The extensions ``l+c`` that are not in the beam are scored as one ``(B, V)`` matrix, of
        which only the ``beam`` best can survive; the prefixes of the beam (each possibly also
        an extension of another) are summed term by term."""
        prefixes, hyps = list(self.hyps), list(self.hyps.values())
        p_b, p_nb, fused = (torch.tensor(v, dtype=torch.float64) for v in zip(*hyps))
        last = torch.tensor([p.token for p in prefixes])
        total = torch.logaddexp(p_b, p_nb)
        # log p_nb(l+c) of the alignments that reach l+c from l in this frame, and its fused part
        acoustic = torch.where(torch.arange(len(row))[None] == last[:, None], p_b[:, None],
                               total[:, None]) + y
        fusion = (fused + self.token_bonus)[:, None].expand_as(acoustic)
        if self.lm is not None:
            lm_rows = torch.stack([self.lm_states[p].log_probs for p in prefixes])
            fusion = fusion + self.lm_weight * lm_rows
        score = (acoustic + fusion).masked_fill_(~allowed, NEG_INF)

        # prefix i = prefix parents[i] + (c,): that extension merges into prefix i
        index = {p: i for i, p in enumerate(prefixes)}
        merged = [(i, index[p.parent], p.token) for i, p in enumerate(prefixes)
                  if p.parent in index]
        merged_nb = {}
        if merged:
            into, parents, tokens = (torch.tensor(v) for v in zip(*merged))
            merged_nb = dict(zip(into.tolist(), acoustic[parents, tokens].masked_fill_(
                ~allowed[tokens], NEG_INF).tolist()))
            score[parents, tokens] = NEG_INF
        new: Dict[Prefix, List[float]] = {}
        for i, (prefix, hyp, total_i) in enumerate(zip(prefixes, hyps, total.tolist())):
            stay_nb = hyp[1] + row[prefix.token] if prefix.parent is not None else NEG_INF
            new[prefix] = [total_i + row[self.blank],
                           logaddexp(stay_nb, merged_nb.get(i, NEG_INF)), hyp[2]]
        best, flat = score.flatten().topk(min(self.beam, score.numel()))
        flat = flat[best > NEG_INF]
        for k, nb, f in zip(flat.tolist(), acoustic.flatten()[flat].tolist(),
                            fusion.flatten()[flat].tolist()):
            parent, c = divmod(k, len(row))
            new[prefixes[parent].child(c)] = [NEG_INF, nb, f]
        kept = sorted(new.items(), key=lambda kv: logaddexp(kv[1][0], kv[1][1]) + kv[1][2],
                      reverse=True)[:self.beam]
        self.hyps = dict(kept)
        if self.lm is not None:
            self.lm_states = self.scored(list(self.hyps))

    def scored(self, prefixes: List[Prefix]) -> Dict[Prefix, LMState]:
        """The LM states of ``prefixes``: those new in this frame (whose parents are all in the
        previous beam) from one batched LM step, the others as they were."""
        new = [p for p in prefixes if p not in self.lm_states]
        if new:
            states = self.lm.extend([self.lm_states[p.parent] for p in new], [p.token for p in new])
            self.lm_states.update(zip(new, states))
        return {p: self.lm_states[p] for p in prefixes}
