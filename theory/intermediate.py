r"""An intermediate temperature can beat both τ → 0 and τ = 1, and be the only one that transcends.

The question (issue 3): is there an instance where some :math:`0 < \tau < 1` beats both the argmax
predictor and the plain mixture? Yes, already with one input and three outputs:

==========  =========  ========  =========
output       "safe"    "better"    "bad"
==========  =========  ========  =========
reward        0.6        1.0        0.0
expert 1     0.975      0.025      0
expert 2     0.025      0.575      0.4
mixture       0.5        0.3        0.2
==========  =========  ========  =========

:math:`R(f_1) = 0.61`, :math:`R(f_2) = 0.59`. The argmax plays "safe" (0.6) and the mixture gets
:math:`0.5 \cdot 0.6 + 0.3 = 0.6`: both lose to expert 1. At :math:`\tau` in between, the tempered
mixture :math:`\propto (0.5^{1/\tau}, 0.3^{1/\tau}, 0.2^{1/\tau})` (logit mode) takes mass away from
"safe" and gives it mostly to "better", because "better" is ranked above "bad": at
:math:`\tau = 0.35` the reward is about 0.638 > 0.61. In prob mode the peak is about 0.621 near
:math:`\tau = 0.11`.

Mechanism: the argmax wins nothing when the plurality output is a mediocre "safe" choice; a soft
vote keeps the runner-up, which is better, while still suppressing the worst output. The chess
results (peak at τ = 0.01–0.1, not at τ → 0) fit this pattern. The general criterion (ours): if
the runner-ups of the inputs closest to a tie are better than the argmax, then
:math:`R(\hat f_\tau) > R(\hat f_{\max})` for all small :math:`\tau > 0` (the first-order term of
the expansion in :math:`\kappa^{1/\tau}` is positive; see ``theory/README.md``).
"""

from __future__ import annotations

import numpy as np

from theory._base import Conclusion, Instance

#: Temperatures on which the curve is scanned (0 and 1 included).
GRID = np.concatenate([[0.0], np.geomspace(1e-3, 1.0, 400)])


def example() -> Instance:
    """The instance in the module docstring."""
    return Instance(experts=[[[0.975, 0.025, 0.0]], [[0.025, 0.575, 0.4]]],
                    reward=[[0.6, 1.0, 0.0]], test_dist=[1.0])


def interior_optimum(instance: Instance, *, mode: str = "logit") -> Conclusion:
    """Does some τ in (0, 1) beat both τ = 0 and τ = 1, and transcend while neither end does?

    ``margin`` is m(τ_best) − max(m(0), m(1), 0) over :data:`GRID`, where m is the transcendence
    margin; ``where`` names τ_best.
    """
    m = instance.margins(GRID, mode=mode)
    ends = max(float(m[0]), float(m[-1]))
    i = int(np.argmax(m[1:-1])) + 1
    margin = float(m[i]) - max(ends, 0.0)
    return Conclusion(bool(margin > 0 and ends <= 0), margin, f"{mode}, τ = {GRID[i]:.3g}",
                      {"margin_tau0": float(m[0]), "margin_tau1": float(m[-1]),
                       "best_tau": float(GRID[i]), "best_margin": float(m[i])})
