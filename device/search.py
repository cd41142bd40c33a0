"""The worst corner of a two-level spread, per objective, with few evaluations.

The anatomy spread of a site has k two-level factors (layer thicknesses, contact R and C), so 2^k
corners: 1024 on the cheek (five layers, R, C and three tissue conductivities). Each corner costs a
3-D solve, and no single corner is worst for every rule (thin skin crowds the current at the pad
rim; thick layers raise the electrode voltage and the heat; a high contact resistance raises the
voltage but evens the current out under the pad). Nor can we prove the figures monotone, let alone
additive, in every factor: the rim peak of a capacitive contact, for one, depends on R and C
through their product and on the layers beneath. So the worst corner is searched, per objective
(one per preset and rule):

1. **Brute force** when 2^k is at most ``brute_force_up_to`` corners (every corner, exact).
2. Otherwise **screening**: a two-level fold-over design built on a Hadamard matrix (N > k runs, N
   the smallest order :func:`hadamard` builds: a power of 2, or a Paley order such as 12; then its
   mirror: 2N runs, 24 for the cheek's ten factors where the power of 2 took 32). Each factor's
   main effect is estimated free of every two-factor interaction (resolution IV), so the sign of
   each factor's effect on each objective is known from 2N solves, not 2^k.
3. **Prediction**: for each objective, the corner that puts every factor on the side its main
   effect says is worse; solved if new.
4. **Local search**: from each objective's worst corner so far, every corner one relevant factor
   away is solved (once: evaluations are shared across objectives) and the search moves to the
   worst while it improves (steepest ascent in the Hamming graph of the corners). It stops at a
   corner no single flip improves: a local maximum, which is the global one when each factor's
   effect keeps its sign whatever the others do (sign-monotone objectives, the case the screening
   assumes); where that fails the local search still climbs out of the predicted corner. A
   factor whose main effect on an objective is below 1e-3 of that objective's largest effect is
   not flipped for it, and an objective equal on every screening run (a rule that does not
   depend on the anatomy) is not searched at all.

What is proved and used instead: every rule's figure is linear, quadratic or monotone in the
current (``Rule.scaling``: the field and the voltage are linear in it, the heat quadratic, the
dose monotone), so one evaluation per corner, at a unit current, gives each rule's limiting
current I_limit, and the objectives are 1 / I_limit: the worst corner of a rule is the same at
every level of every preset of a group, and no level adds a solve. Within a corner the physics
is linear in the sources too (one frequency response and one heat basis serve every waveform,
level and preset: :class:`emsim.device.validate.AnatomySolver`). In the factors nothing is
claimed: a layer thickness moves the mesh, and a capacitive contact's effect on the rim peak or
the pulse voltage has no sign proved to hold for every waveform and stack, so the screening
and the local search stay.

What the search guarantees is stated, not assumed: the test suite runs it against brute force on
a small case whose objectives have interactions and a mixed worst corner
(``tests/test_device_search.py``), and a validation reports which corners were solved.

The evaluation is a callable ``corner -> objectives`` (a vector, larger is worse, NaN where an
objective does not apply), so the anatomy solve behind it (re-meshing, or morphing one mesh) is
the caller's. Or a batch callable ``corners -> objectives of each``: the corners whose evaluation
does not depend on one another go in one call (every brute-force corner; the screening runs; the
predicted corners; one local-search step's new neighbours), so that a caller may solve them
side by side (:func:`emsim.device.validate.solve_groups`: one group of MPI ranks per corner).
The batches are the corners the one-by-one search evaluates, in its order: the same corners, the
same results.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "BRUTE_FORCE_UP_TO",
    "CONFIRM_BELOW",
    "CONFIRM_TOP",
    "BatchEvaluation",
    "Confirmation",
    "SearchResult",
    "confirm_worst",
    "foldover_design",
    "hadamard",
    "one_by_one",
    "worst_corners",
]

Corner = tuple[bool, ...]
#: Spreads of at most this many corners are solved whole (brute force) by :func:`worst_corners`.
BRUTE_FORCE_UP_TO = 16
#: Objective vectors of a batch of corners, in the batch's order.
BatchEvaluation = Callable[[Sequence[Corner]], Sequence[np.ndarray]]


def _is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, math.isqrt(n) + 1))


def hadamard(n: int) -> np.ndarray | None:
    """A Hadamard matrix of order n (entries +-1, H H^T = n I), first column all ones; None if not built.

    Built for the powers of 2 (Sylvester's doubling), p + 1 for a prime p = 3 mod 4 that is not
    a power of 2 minus 1 (Paley's first construction: 12, 20, 24, 44, 48, 60, ...) and twice an
    order built so (40 = 2 x 20, ...). Other orders (28, 36, 52, 56, ...: Hadamard matrices exist there, by constructions not
    coded here) give None, and :func:`foldover_design` takes the next order built.
    """
    if n == 1:
        return np.ones((1, 1), dtype=int)
    if n % 2:
        return None
    if n & (n - 1) and n % 4 == 0 and _is_prime(n - 1) and (n - 1) % 4 == 3:
        q = n - 1
        # Paley I: Jacobsthal matrix Q[i, j] = chi(j - i) of the quadratic character mod q, then
        # H = I + [[0, 1^T], [-1, Q]] (skew), normalised to a first column of ones
        chi = np.full(q, -1, dtype=int)
        chi[0] = 0
        chi[[(x * x) % q for x in range(1, q)]] = 1
        Q = chi[(np.arange(q)[None, :] - np.arange(q)[:, None]) % q]
        S = np.zeros((n, n), dtype=int)
        S[0, 1:] = 1
        S[1:, 0] = -1
        S[1:, 1:] = Q
        H = S + np.eye(n, dtype=int)
        return H * H[:, :1]  # rows signed so that column 0 is all ones (still Hadamard)
    half = hadamard(n // 2)
    if half is None:
        return None
    return np.block([[half, half], [half, -half]])


def foldover_design(k: int) -> np.ndarray:
    """A two-level resolution IV design for k factors: 2N runs, True = max.

    N is the smallest Hadamard order above k (:func:`hadamard`: N = 12 for k = 8-11, 24 runs, where
    the power of 2, 16, took 32). Measured on the sample (ten factors): 66 corners solved instead
    of 80, the same worst value of every searched rule (docs/performance.md). Columns 1..k of the
    Hadamard matrix (column 0, all ones, is skipped), then the same runs mirrored: main effects are
    orthogonal to each other and to every two-factor interaction (the fold-over of any two-level
    orthogonal array). The non-power-of-2 orders (Plackett-Burman designs) alias each main effect
    partially with three-factor interactions, as the power-of-2 fold-over fully aliases it with
    some: resolution IV in both, and the screening assumes three-factor interactions small beside
    main effects in both.
    """
    n = k + 1
    h = hadamard(n)
    while h is None:  # ends at the next power of 2 at the latest
        n += 1
        h = hadamard(n)
    base = h[:, 1 : k + 1] > 0
    return np.vstack([base, ~base])


@dataclass
class SearchResult:
    """The outcome of a worst-corner search.

    Attributes:
        worst: per objective, the worst corner found (None where every value was NaN).
        values: every evaluated corner's objective vector, in evaluation order.
        method: ``"brute force"`` or ``"fold-over screening + local search"``.
        evaluations: number of corners evaluated.
        batches: the number of corners of each batch evaluation, in order (they sum to
            ``evaluations``).
    """

    worst: list[Corner | None]
    values: dict[Corner, np.ndarray] = field(default_factory=dict)
    method: str = ""
    batches: list[int] = field(default_factory=list)

    @property
    def evaluations(self) -> int:
        """Number of corners evaluated."""
        return len(self.values)


def one_by_one(evaluate: Callable[[Corner], np.ndarray]) -> BatchEvaluation:
    """A batch evaluation that evaluates its corners one after the other, in order."""

    def many(corners: Sequence[Corner]) -> list[np.ndarray]:
        return [evaluate(c) for c in corners]

    return many


def worst_corners(
    k: int,
    evaluate: Callable[[Corner], np.ndarray] | None = None,
    *,
    evaluate_many: BatchEvaluation | None = None,
    brute_force_up_to: int = BRUTE_FORCE_UP_TO,
    max_steps: int = 64,
    announce: Callable[[str, int], None] | None = None,
) -> SearchResult:
    """The worst corner of each objective over the 2^k corners (larger objective = worse).

    Args:
        k: number of two-level factors.
        evaluate: corner (k bools, True = max) -> objective vector (same length every call; NaN
            where an objective does not apply). Called once per distinct corner.
        evaluate_many: instead of ``evaluate``: a list of distinct corners never evaluated before
            -> their objective vectors, in the same order. Called once per batch of corners whose
            choice does not depend on one another's values.
        brute_force_up_to: evaluate every corner when 2^k is at most this.
        max_steps: bound on the local-search moves per objective.
        announce: called before each batch evaluation with what the batch is ("every corner
            (brute force)", "the fold-over screening design", "the corners the screening predicts
            worst", "local-search step n": the n-th batch of the local search) and its number of
            new corners (a phase whose corners were all evaluated before makes no batch).
    """
    if (evaluate is None) == (evaluate_many is None):
        raise TypeError("worst_corners: give exactly one of evaluate, evaluate_many")
    many = evaluate_many if evaluate_many is not None else one_by_one(evaluate)  # type: ignore[arg-type]
    values: dict[Corner, np.ndarray] = {}
    batches: list[int] = []
    steps = [0]

    def batch(corners: Sequence[Sequence[bool]], what: str) -> list[np.ndarray]:
        """Evaluate the new ones of ``corners`` in one call (first-seen order); every value, in order."""
        wanted = [tuple(bool(v) for v in c) for c in corners]
        new = list(dict.fromkeys(c for c in wanted if c not in values))
        if new:
            if what == "local-search step":
                steps[0] += 1
                what = f"local-search step {steps[0]}"
            if announce is not None:
                announce(what, len(new))
            got = list(many(new))
            if len(got) != len(new):
                raise ValueError(f"evaluate_many returned {len(got)} objective vectors for {len(new)} corners")
            for c, y in zip(new, got, strict=True):
                values[c] = np.asarray(y, float)
            batches.append(len(new))
        return [values[c] for c in wanted]

    def best(j: int) -> tuple[Corner | None, float]:
        # ties keep the first evaluated corner (deterministic)
        out, top = None, -math.inf
        for c, v in values.items():
            if not math.isnan(v[j]) and v[j] > top:
                out, top = c, float(v[j])
        return out, top

    if k == 0:
        batch([()], "the single case")
        return SearchResult([() for _ in range(len(values[()]))], values, "single case", batches)
    if 2**k <= brute_force_up_to:
        batch(list(itertools.product((False, True), repeat=k)), "every corner (brute force)")
        m = len(next(iter(values.values())))
        return SearchResult([best(j)[0] for j in range(m)], values, "brute force", batches)
    design = foldover_design(k)
    Y = np.array(batch(design.tolist(), "the fold-over screening design"))  # (runs, objectives)
    m = Y.shape[1]
    X = np.where(design, 1.0, -1.0)
    relevant: list[list[int]] = [[] for _ in range(m)]
    active = []
    predicted = []
    for j in range(m):
        y = Y[:, j]
        ok = ~np.isnan(y)
        if not ok.any() or np.ptp(y[ok]) <= 1e-12 * np.abs(y[ok]).max():
            continue  # NaN or the same on every screening run: independent of the anatomy, nothing to search
        effect = X[ok].T @ (y[ok] - y[ok].mean())  # main effects (orthogonal design, free of 2-factor interactions)
        # the local search flips only the factors that matter to this objective (an effect above
        # 1e-3 of its largest): a factor without effect on any of the 2N runs is left where it is
        relevant[j] = [f for f in range(k) if abs(effect[f]) > 1e-3 * np.abs(effect).max()]
        active.append(j)
        predicted.append(tuple(effect > 0))
    batch(predicted, "the corners the screening predicts worst")  # every prediction from the screening alone: one batch
    for j in active:
        corner, top = best(j)
        for _ in range(max_steps):
            if corner is None:
                break
            moves = [tuple(not v if i == f else v for i, v in enumerate(corner)) for f in relevant[j]]
            scores = [v[j] for v in batch(moves, "local-search step")]  # one step's neighbours: one batch
            finite = [(s, c) for s, c in zip(scores, moves, strict=True) if not math.isnan(s)]
            if not finite:
                break
            s, c = max(finite, key=lambda t: t[0])
            if s <= top:
                break
            corner, top = c, s
    return SearchResult([best(j)[0] for j in range(m)], values, "fold-over screening + local search", batches)



#: :func:`confirm_worst` solves on the accurate model each objective's top corners of the search
#: mesh's ranking, this many first ...
CONFIRM_TOP = 3
#: ... and every corner down that ranking to this many below the accurate worst, which must be no
#: worse; then, for the bounded objectives (the limit rules), every corner whose search-mesh
#: value times the largest ratio seen could reach the worst (docs/performance.md: on the sample
#: the head mesh's worst of every rule was within the search mesh's top 3 over the 64 corners
#: both solved; in the run the CEM43 walk went to the 5th).
CONFIRM_BELOW = 2


@dataclass
class Confirmation:
    """The worst corners of a two-model search, confirmed on the accurate model.

    Attributes:
        worst: per objective, the worst corner on the accurate model among those confirmed
            (None where every value was NaN).
        values: the accurate objective vector of every confirmed corner, in evaluation order.
        ratio_range: per objective, (smallest, largest) accurate / cheap value over the
            confirmed corners where both are > 0 (None: no such corner).
        rank: per objective, the place of its accurate worst in the cheap model's ranking (0:
            the cheap model's worst; None: no value).
        bound: per objective, max over the screened corners left unconfirmed of cheap value x
            the largest ratio, over the accurate worst: how much worse such a corner could be at
            the ratios seen (<= 1 for every bounded objective: none could be worse; None: an
            objective the same on every corner, or none computable).
        rounds: batches of accurate evaluations.
    """

    worst: list[Corner | None]
    values: dict[Corner, np.ndarray] = field(default_factory=dict)
    ratio_range: list[tuple[float, float] | None] = field(default_factory=list)
    rank: list[int | None] = field(default_factory=list)
    bound: list[float | None] = field(default_factory=list)
    rounds: int = 0


def confirm_worst(
    screened: dict[Corner, np.ndarray],
    evaluate_many: BatchEvaluation,
    *,
    top: int = CONFIRM_TOP,
    below: int = CONFIRM_BELOW,
    bounded: Sequence[int] | None = None,
    announce: Callable[[str, int], None] | None = None,
) -> Confirmation:
    """The worst corner of each objective on an accurate model, from a search run on a cheap one.

    The search (:func:`worst_corners`) ranks the corners with a cheap model (a coarser mesh of
    the same site). Its values differ from the accurate model's by a discretisation error that
    varies from corner to corner by a few per cent (the sample: the ratio of the two varied by
    2.4-3.6 % per rule over 64 corners), so its ranking holds except between corners that close.
    This solves on the accurate model, per objective:

    1. the ``top`` corners of the cheap model's ranking;
    2. every corner down that ranking to ``below`` corners past the accurate worst found (over
       every corner solved accurately), which must be no worse (repeated as the worst moves);
    3. for the ``bounded`` objectives, every screened corner whose cheap value times the largest
       ratio accurate / cheap seen (over every confirmed corner) exceeds the accurate worst: at
       that ratio it could be worse (repeated, with the ratios and the worst updated, until none
       could).

    After step 3 no screened corner of a bounded objective could be worse than the worst found
    unless its ratio exceeds every ratio seen (``bound`` <= 1). What is not claimed: anything of
    a corner the search did not solve (the search's own limit), or of a ratio beyond those seen.
    An objective equal on every corner confirms one corner; one NaN on every corner none.

    Args:
        screened: the cheap model's objective vector of every corner the search solved (larger
            is worse; NaN where an objective does not apply), in evaluation order (ties keep it).
        evaluate_many: the accurate model: distinct corners -> their objective vectors.
        top: corners of each objective's ranking solved first, >= 1.
        below: corners past the accurate worst that must be solved, >= 0.
        bounded: the objectives step 3 applies to (default every one).
        announce: called before each batch with what it is and its number of corners.
    """
    if not screened:
        raise ValueError("confirm_worst: no screened corner")
    if top < 1 or below < 0:
        raise ValueError(f"confirm_worst: top {top!r} must be >= 1 and below {below!r} >= 0")
    corners = list(screened)
    Y = np.array([screened[c] for c in corners], dtype=float)
    m = Y.shape[1]
    gated = set(range(m)) if bounded is None else set(bounded)
    values: dict[Corner, np.ndarray] = {}
    rounds = [0]
    ranking: list[list[Corner]] = []
    constant: list[bool] = []
    for j in range(m):
        y = Y[:, j]
        ok = np.flatnonzero(~np.isnan(y))
        idx = ok[np.argsort(-y[ok], kind="stable")]
        constant.append(bool(len(ok)) and bool(np.ptp(y[ok]) <= 1e-12 * abs(float(y[idx[0]]))))
        if constant[-1]:
            idx = idx[:1]  # the same on every corner: independent of the anatomy
        ranking.append([corners[i] for i in idx])

    def solve(new: list[Corner], what: str) -> None:
        new = [c for c in dict.fromkeys(new) if c not in values]
        if not new:
            return
        rounds[0] += 1
        if announce is not None:
            announce(what, len(new))
        got = list(evaluate_many(new))
        if len(got) != len(new):
            raise ValueError(f"evaluate_many returned {len(got)} objective vectors for {len(new)} corners")
        for c, y in zip(new, got, strict=True):
            values[c] = np.asarray(y, float)

    def best_of(j: int) -> Corner | None:
        out: Corner | None = None
        most = -math.inf
        for c, v in values.items():
            if not math.isnan(v[j]) and v[j] > most:
                out, most = c, float(v[j])
        return out

    def ratios(j: int) -> np.ndarray:
        r = np.array([values[c][j] / screened[c][j] for c in values if screened[c][j] > 0 and values[c][j] > 0])
        return r[np.isfinite(r)]

    first = [c for ranked in ranking for c in ranked[:top]]
    solve(first or corners[:1], "the search mesh's top corners, on the validation mesh")
    while True:  # each round solves at least one more corner of finitely many, or ends
        more: list[Corner] = []
        for j, ranked in enumerate(ranking):
            w = best_of(j)
            if w is None or w not in ranked:
                continue
            p = ranked.index(w)
            more += [c for c in ranked[: p + 1 + below] if c not in values]
        if more:
            solve(more, "the corners ranked down to two past the worst so far, on the validation mesh")
            continue
        for j in sorted(gated):
            w, r = best_of(j), ratios(j)
            if w is None or constant[j] or not len(r) or not values[w][j] > 0:
                continue
            # could be worse: above the worst at the largest ratio (a tie, to rounding, is not worse)
            reach = values[w][j] / float(r.max()) * (1.0 + 1e-12)
            more += [c for c in ranking[j] if c not in values and screened[c][j] > reach]
        if not more:
            break
        solve(more, "corners that could be worse at the largest ratio seen, on the validation mesh")

    worst = [best_of(j) for j in range(m)]
    ranges: list[tuple[float, float] | None] = []
    bounds: list[float | None] = []
    for j, w in enumerate(worst):
        r = ratios(j)
        ranges.append((float(r.min()), float(r.max())) if len(r) else None)
        rest = [float(screened[c][j]) for c in ranking[j] if c not in values]
        if not len(r) or w is None or constant[j] or not values[w][j] > 0:
            bounds.append(None)
        else:
            bounds.append(max(rest, default=0.0) * float(r.max()) / float(values[w][j]))
    rank = [ranking[j].index(w) if w is not None and w in ranking[j] else None for j, w in enumerate(worst)]
    return Confirmation(worst, values, ranges, rank, bounds, rounds[0])
