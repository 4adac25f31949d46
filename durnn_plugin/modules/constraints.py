"""The two hard constraints of SPEC sections 1-2, as functions of a weight.

* ``clamp_abs(u, bound)``: ``|u_n| <= bound`` elementwise (IndRNN; bound = ``γ^{1/T}``).
* ``spectral_scale(U, rho)``: ``U · min(1, ρ / σ_max(U))`` so ``σ_max <= ρ`` (DuRNN short
  term). Smooth, used in every forward.
* ``spectral_project(U, rho)``: the Euclidean projection onto ``{σ_max <= ρ}`` (singular values
  clipped at ρ), used in-place after each optimiser update and for saved state dicts.

Each is the identity on weights that already satisfy the bound. For ``spectral_project``
"already satisfy" allows ``σ_max <= ρ (1 + PROJECT_RTOL)``: a matrix rebuilt from clipped singular
values has ``σ_max`` a few ulps above ρ, and projecting it again would change its last bits. That
made a checkpoint (projected when saved) differ from the weights in memory, so a resumed run
drifted from an uninterrupted one. With the tolerance the projection is idempotent; the forward's
``spectral_scale`` still scales such a matrix to ``σ_max <= ρ``.
"""
import torch
from torch import Tensor

PROJECT_RTOL = 1e-5  # relative slack of spectral_project's "inside" test (module docstring)


def clamp_abs(u: Tensor, bound: float) -> Tensor:
    return u.clamp(-bound, bound)


def spectral_norm(U: Tensor) -> Tensor:
    """Largest singular value, computed in fp32 or better."""
    dtype = U.dtype if U.dtype in (torch.float32, torch.float64) else torch.float32
    return torch.linalg.matrix_norm(U.to(dtype), ord=2)


def spectral_scale(U: Tensor, rho: float) -> Tensor:
    sigma = spectral_norm(U)
    return U * (rho / sigma.clamp(min=rho)).to(U.dtype)


@torch.no_grad()
def spectral_project(U: Tensor, rho: float) -> Tensor:
    dtype = U.dtype if U.dtype in (torch.float32, torch.float64) else torch.float32
    P, S, Qh = torch.linalg.svd(U.to(dtype), full_matrices=False)
    if S.numel() == 0 or S.max() <= rho * (1 + PROJECT_RTOL):
        return U.clone()
    return ((P * S.clamp(max=rho)) @ Qh).to(U.dtype)
