"""The two hard constraints (docs/model.md, "Constraints") as projections onto their sets.

* ``clamp_recurrent(u, bound, floor)``: ``|u_n| <= bound`` elementwise (IndRNN; bound =
  ``γ^{1/T}``), or ``floor <= u_n <= bound`` when ``floor > 0`` (keeps a layer's memory from
  fading). This is the Euclidean projection onto the box.
* ``spectral_project_(U, rho)``: the Euclidean projection onto ``{σ_max(U) <= ρ}`` (singular
  values clipped at ρ), in place; returns ``σ_max`` of the result.

Both are applied to the weights the optimiser updates, right after each of its steps
(:mod:`.projection_hook`), so every forward, validation and checkpoint sees the same constrained
values and no forward pays for a decomposition. Each projection is the identity on weights that
already satisfy the bound. For ``spectral_project_`` "already satisfy" allows
``σ_max <= ρ (1 + PROJECT_RTOL)``: a matrix rebuilt from clipped singular values has ``σ_max`` a
few ulps above ρ, and projecting it again would change its last bits, so a resumed run would
drift from an uninterrupted one. With the tolerance the projection is idempotent. For a bf16 or
fp16 tensor the slack is the dtype's rounding step (``torch.finfo(dtype).eps``), so loading a
bf16 copy of projected weights leaves it as it is.

Singular values come from the symmetric eigenproblem of the Gram matrix ``UᵀU = Q diag(σ²) Qᵀ``
in float64, not from an SVD: LAPACK's SVD (``gesdd``) can stop with "failed to converge ... too
many repeated singular values" on exactly the matrices the projection makes (several singular
values equal to ρ). The symmetric solver has no such failure mode here, and float64 keeps
``σ_max`` accurate to about 1e-16 relative (squaring costs accuracy only for the small singular
values, which the constraint never touches). The projection is then
``U Q diag(min(1, ρ/σ)) Qᵀ = P min(Σ, ρ) Qᵀ``; the eigenvectors are computed only when a
singular value is above the bound.
"""
import torch
from torch import Tensor

PROJECT_RTOL = 1e-5  # relative slack of spectral_project_'s "inside" test (module docstring)


def clamp_recurrent(u: Tensor, bound: float, floor: float = 0.0) -> Tensor:
    """``u`` clamped to ``[-bound, bound]``, or to ``[floor, bound]`` when ``floor > 0``: with a
    floor, each unit keeps at least ``floor^t`` of its state over ``t`` steps. The floor is
    positive, not a floor on ``|u|``: states after relu are ``>= 0``, so a negative ``u`` damps
    them instead of keeping them, and a floor on ``|u|`` would let one optimiser step flip
    ``u`` from ``+floor`` to ``-bound``. Gradient 1 inside the range (bounds included)."""
    return u.clamp(floor if floor > 0 else -bound, bound)


@torch.no_grad()
def clamp_recurrent_(u: Tensor, bound: float, floor: float = 0.0) -> None:
    """:func:`clamp_recurrent` in place: the projection applied after optimiser steps."""
    u.clamp_(floor if floor > 0 else -bound, bound)


def gram_eigen(U: Tensor, vectors: bool = False):
    """Ascending eigenvalues ``σ²`` of ``UᵀU`` (and with ``vectors`` its eigenvectors ``Q``, the
    right singular vectors), in float64 (module docstring)."""
    U64 = U.to(torch.float64)
    gram = U64.mT @ U64
    return torch.linalg.eigh(gram) if vectors else torch.linalg.eigvalsh(gram)


def spectral_norm(U: Tensor) -> Tensor:
    """Largest singular value ``σ_max(U)`` (float64, 0-dim)."""
    return gram_eigen(U)[-1].clamp(min=0).sqrt()


@torch.no_grad()
def spectral_project_(U: Tensor, rho: float) -> Tensor:
    """Clip the singular values of ``U (N, N)`` at ``rho``, in place (module docstring); returns
    ``σ_max`` of the result, ``min(σ_max, ρ)`` by construction (float64, 0-dim)."""
    sigma_max = spectral_norm(U)
    slack = max(PROJECT_RTOL, torch.finfo(U.dtype).eps)  # a bf16/fp16 copy's rounding is inside
    if U.numel() == 0 or sigma_max <= rho * (1 + slack):
        return sigma_max
    U64 = U.to(torch.float64)
    squares, Q = gram_eigen(U64, vectors=True)
    shrink = rho / squares.clamp(min=0).sqrt().clamp(min=rho)  # 1 where σ <= ρ already
    U.copy_(((U64 @ Q) * shrink) @ Q.mT)
    return sigma_max.clamp(max=rho)
