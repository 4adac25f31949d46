"""The two hard constraints of SPEC sections 1-2, as functions of a weight.

* ``clamp_abs(u, bound)``: ``|u_n| <= bound`` elementwise (IndRNN; bound = ``γ^{1/T}``).
* ``spectral_scale(U, rho)``: ``U · min(1, ρ / σ_max(U))`` so ``σ_max <= ρ`` (DuRNN short
  term). Smooth, used in every forward.
* ``spectral_project(U, rho)``: the Euclidean projection onto ``{σ_max <= ρ}`` (singular values
  clipped at ρ), used in-place after each optimiser update and for saved state dicts.

Each is the identity on weights that already satisfy the bound.
"""
import torch
from torch import Tensor


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
    if S.numel() == 0 or S.max() <= rho:
        return U.clone()
    return ((P * S.clamp(max=rho)) @ Qh).to(U.dtype)
