"""The two hard constraints of SPEC sections 1-2, as functions of a weight.

* ``clamp_recurrent(u, bound, floor)``: ``|u_n| <= bound`` elementwise (IndRNN; bound =
  ``γ^{1/T}``), or ``floor <= u_n <= bound`` when ``floor > 0`` (keeps a layer's memory from
  fading).
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

Singular values come from the symmetric eigenproblem of the Gram matrix ``UᵀU = Q diag(σ²) Qᵀ``
in float64, not from an SVD: LAPACK's SVD (``gesdd``) can stop with "failed to converge ... too
many repeated singular values" on exactly the matrices the projection makes (several singular
values equal to ρ); a training run died that way in the forward after 560 updates. The symmetric
solver has no such failure mode here, and float64 keeps ``σ_max`` accurate to about 1e-16
relative (squaring costs accuracy only for the small singular values, which the constraint never
touches). The projection is then ``U Q diag(min(1, ρ/σ)) Qᵀ = P min(Σ, ρ) Qᵀ``.
"""
import torch
from torch import Tensor

PROJECT_RTOL = 1e-5  # relative slack of spectral_project's "inside" test (module docstring)


def clamp_recurrent(u: Tensor, bound: float, floor: float = 0.0) -> Tensor:
    """``u`` clamped to ``[-bound, bound]``, or to ``[floor, bound]`` when ``floor > 0``: with a
    floor, each unit keeps at least ``floor^t`` of its state over ``t`` steps. The floor is
    positive, not a floor on ``|u|``: states after relu are ``>= 0``, so a negative ``u`` damps
    them instead of keeping them, and a floor on ``|u|`` would let one optimiser step flip
    ``u`` from ``+floor`` to ``-bound``. Gradient 1 inside the range, 0 outside."""
    return u.clamp(floor if floor > 0 else -bound, bound)


def gram_eigen(U: Tensor, vectors: bool = False):
    """Ascending eigenvalues ``σ²`` of ``UᵀU`` (and with ``vectors`` its eigenvectors ``Q``, the
    right singular vectors), in float64 (module docstring)."""
    U64 = U.to(torch.float64)
    gram = U64.mT @ U64
    return torch.linalg.eigh(gram) if vectors else torch.linalg.eigvalsh(gram)


def spectral_norm(U: Tensor) -> Tensor:
    """Largest singular value, in U's dtype (float32 for half types)."""
    dtype = U.dtype if U.dtype in (torch.float32, torch.float64) else torch.float32
    return gram_eigen(U)[-1].clamp(min=0).sqrt().to(dtype)


def spectral_scale(U: Tensor, rho: float) -> Tensor:
    """``U · ρ / max(σ_max, ρ)``; clamping ``σ²`` before the square root keeps the gradient
    finite (zero) when ``σ_max < ρ``."""
    scale = rho / gram_eigen(U)[-1].clamp(min=rho ** 2).sqrt()
    return U * scale.to(U.dtype)


@torch.no_grad()
def spectral_project(U: Tensor, rho: float) -> Tensor:
    U64 = U.to(torch.float64)
    squares, Q = gram_eigen(U64, vectors=True)
    sigma = squares.clamp(min=0).sqrt()
    if sigma.numel() == 0 or sigma.max() <= rho * (1 + PROJECT_RTOL):
        return U.clone()
    shrink = rho / sigma.clamp(min=rho)  # 1 for singular values already at or below ρ
    return (((U64 @ Q) * shrink) @ Q.mT).to(U.dtype)
