"""DuRNN module (docs/model.md section 2). x ``(T, B, D)``; sizes ``N_s`` (short), ``N_l`` (long)::

    s_t = φ(W_s x_t + U_s s_{t-1} + b_s)              short-term, full recurrence
    g_t = σ(W_g x_t + V_g s_t + b_g)                 selection
    h_t = relu(W_l (g_t ⊙ s_t) + b_l + u ⊙ h_{t-1})  long-term, independent recurrence
    o_t = [s_t ; h_t]                                output (T, B, N_s + N_l)

State ``(s, h)`` with s ``(1, B, N_s)`` and h ``(1, B, N_l)``.

Computation: the short-term part runs with the constrained ``U_s`` through ``torch.rnn_relu`` /
``torch.rnn_tanh`` on CUDA (cuDNN; bf16 inputs in fp32, which cuDNN runs faster) and through
:func:`..ops.short_rnn_cpu.short_rnn_loop` elsewhere (one autograd node for the whole sequence:
torch's CPU ``rnn_relu`` records one node per step and its backward costs O(T) per step, O(T²)
in all); the gate and the long-term input are GEMMs over all ``T·B`` positions; the long-term
recurrence is the elementwise IndRNN op. Only the short-term step needs a GEMM inside the time
loop.

Constraints ``σ_max(U_s) <= ρ_s`` and ``|u| <= u_bound`` (``u_floor <= u <= u_bound`` with a
floor ``u_floor > 0``): the weights the optimiser updates are projected after each of its steps
(singular values of ``U_s`` clipped at ``ρ_s``, ``u`` clamped; :mod:`.projection_hook`), so the
forward uses ``U_s`` as it is. The forward keeps one cheap guard, the elementwise clamp of ``u``
(the identity, with gradient 1, on projected weights; it matters only for a bf16 copy one
rounding step above the bound). ``σ_max(U_s)`` is computed once per projection, never per
forward.

Switches (ablations): ``selection`` ∈ {``input+short`` (default), ``short``, ``input``,
``none`` (g = 1)}; ``long_input`` ∈ {``selected`` (default), ``selected+input`` (adds
``W_li x_t``)}; ``module_output`` ∈ {``concat`` (default), ``long`` (o_t = h_t)};
``short_activation`` ∈ {``relu``, ``tanh``}.

Init (our choice, the paper's is not known to us): input and recurrent matrices
``U(±1/sqrt(fan_in))`` with ``U_s`` then projected to ``σ_max <= ρ_s``; biases 0 (gate starts
at 0.5 for zero input); ``u ~ U(u_init_low, u_bound)``. With ``long_input_std > 0`` the inputs
of the long-term recurrence (``W_l``, and ``W_li``) start from ``N(0, long_input_std²)``
instead (:func:`.indrnn_cell.input_weight`).
"""
from typing import Callable, Dict, Optional, Tuple

import torch
from torch import Tensor, nn

from ..ops import indrnn_recurrence, last_states, short_rnn_recurrence
from .cell_base import RecurrentCell, State
from .constraints import clamp_recurrent, clamp_recurrent_, spectral_project_
from .indrnn_cell import input_weight, recurrent_weight_statistics, uniform_weight

SELECTIONS = ("input+short", "short", "input", "none")
LONG_INPUTS = ("selected", "selected+input")
MODULE_OUTPUTS = ("concat", "long")
SHORT_ACTIVATIONS = ("relu", "tanh")


class DuRNNCell(RecurrentCell):
    def __init__(self, input_size: int, short_size: int, long_size: int, *, u_bound: float,
                 u_init_low: float = 0.0, short_rho: float = 0.9, short_activation: str = "relu",
                 selection: str = "input+short", long_input: str = "selected",
                 module_output: str = "concat", u_floor: float = 0.0,
                 long_input_std: float = 0.0):
        super().__init__()
        D, Ns, Nl = input_size, short_size, long_size
        self.short_rho, self.u_bound, self.u_floor = short_rho, u_bound, u_floor
        self.short_activation, self.selection = short_activation, selection
        self.long_input, self.module_output = long_input, module_output
        self.output_size = Ns + Nl if module_output == "concat" else Nl
        self.state_sizes = (Ns, Nl)

        self.W_s = uniform_weight(Ns, D)
        self.U_s = uniform_weight(Ns, Ns)
        self.b_s = nn.Parameter(torch.zeros(Ns))
        self.us_norm = spectral_project_(self.U_s.data, short_rho)  # σ_max(U_s), for the logs
        # x-side projections of the gate and (optionally) the long-term input: one GEMM.
        self.x_sizes = [Ns if "input" in selection else 0, Nl if long_input == "selected+input" else 0]
        self.W_x = uniform_weight(sum(self.x_sizes), D) if sum(self.x_sizes) else None
        if self.x_sizes[1] and long_input_std > 0:
            self.W_x.data[self.x_sizes[0]:].normal_(0.0, long_input_std)
        self.V_g = uniform_weight(Ns, Ns) if "short" in selection else None
        self.b_g = nn.Parameter(torch.zeros(Ns)) if selection != "none" else None
        self.W_l = input_weight(Nl, Ns, long_input_std)
        self.b_l = nn.Parameter(torch.zeros(Nl))
        self.u = nn.Parameter(torch.empty(Nl).uniform_(u_init_low, u_bound))
        self.gate_mean: Optional[Tensor] = None

    def short_term(self, x: Tensor, s0: Tensor) -> Tensor:
        """s: ``(T, B, N_s)`` from x ``(T, B, D)`` and s0 ``(1, B, N_s)``."""
        # the implementation (CPU loop, cuDNN, Triton) is chosen per call: ops/dispatch.py
        return short_rnn_recurrence(x, self.W_s, self.b_s, self.U_s, s0[0], self.short_activation,
                                    self.training)

    def selection_gate(self, s: Tensor, x_gate: Optional[Tensor]) -> Optional[Tensor]:
        """``g = σ(x_gate + V_g s + b_g)`` over all positions ``(T, B, N_s)``; ``None`` when
        ``selection`` is ``none`` (g = 1). ``x_gate`` is ``W_g x`` (or ``None``)."""
        if self.selection == "none":
            return None
        gate = self.b_g
        if self.V_g is not None:
            gate = nn.functional.linear(s, self.V_g, gate)
        if x_gate is not None and x_gate.shape[-1]:
            gate = gate + x_gate
        return torch.sigmoid(gate)

    def forward(self, x: Tensor, state: Optional[State] = None,
                lengths: Optional[Tensor] = None) -> Tuple[Tensor, State]:
        s0, h0 = state if state is not None else self.initial_state(x.shape[1], x)
        s = self.short_term(x, s0)
        x_gate, x_long = (None, None)
        if self.W_x is not None:
            x_gate, x_long = nn.functional.linear(x, self.W_x).split(self.x_sizes, -1)
        gate = self.selection_gate(s, x_gate)
        selected = s if gate is None else gate * s
        a = nn.functional.linear(selected, self.W_l, self.b_l)
        if x_long is not None and x_long.shape[-1]:
            a = a + x_long
        h = indrnn_recurrence(a, clamp_recurrent(self.u, self.u_bound, self.u_floor), h0)
        if gate is not None and self.training:  # for the training log only
            self.gate_mean = gate.detach().mean()
        self._record(short=s, gate=gate, long_input=a, long=h)
        y = torch.cat([s, h], -1) if self.module_output == "concat" else h
        return y, (last_states(s0, s, lengths), last_states(h0, h, lengths))

    def statistics(self) -> Dict[str, Tensor]:
        """``u_mean``/``u_max`` of ``|u|``, ``us_norm`` = σ_max(U_s) after the last projection
        and ``gate``, the mean of g over all ``(t, b, n)`` of the last forward (padding
        included)."""
        stats = recurrent_weight_statistics(clamp_recurrent(self.u, self.u_bound, self.u_floor))
        stats["us_norm"] = self.us_norm.to(torch.float32)
        if self.gate_mean is not None:
            stats["gate"] = self.gate_mean
        return stats

    def constraint_projections(self) -> Dict[str, Callable[[Tensor], None]]:
        return {"u": self._project_u, "U_s": self._project_U_s}

    def _project_u(self, u: Tensor) -> None:
        clamp_recurrent_(u, self.u_bound, self.u_floor)

    def _project_U_s(self, U: Tensor) -> None:
        self.us_norm = spectral_project_(U, self.short_rho)
