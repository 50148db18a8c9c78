"""transcendence: when does a generative model trained on many experts beat all of them?

The formal setup of Zhang et al. (2024), "Transcendence: Generative Models Can Outperform The
Experts That Train Them", made exact. NumPy and SciPy only.

Shapes: experts ``(k, n_x, n_y)``, input distributions ``(k, n_x)``, weights ``(k,)``, a policy
``(n_x, n_y)``, a reward ``(n_x, n_y)``, a test distribution ``(n_x,)``.

>>> import transcendence as tr
>>> experts = [[[0.6, 0.4, 0.0]], [[0.0, 0.4, 0.6]]]      # two experts, one input, three actions
>>> reward, test = [[0.0, 1.0, 0.0]], [1.0]               # only the middle action is right
>>> tr.expected_reward(tr.mixture(experts), reward, test)  # tau = 1: no better than the experts
0.4
>>> tr.check_transcendence(experts, reward, test).margin    # tau = 0: the majority vote wins
0.6
"""

from transcendence._validate import ROW_ATOL
from transcendence.experts import noisy_expert, optimal_policy, partition_experts
from transcendence.policies import ARGMAX_ATOL, argmax_policy, expected_reward, favor, mixture, temper, tempered_reward
from transcendence.sampling import empirical_policy, sample_dataset
from transcendence.transcend import MARGIN_TOL, TranscendenceResult, check_transcendence, critical_temperature

__all__ = [
    "mixture", "temper", "argmax_policy", "expected_reward", "favor", "tempered_reward",
    "check_transcendence", "critical_temperature", "TranscendenceResult",
    "optimal_policy", "noisy_expert", "partition_experts",
    "sample_dataset", "empirical_policy",
    "ARGMAX_ATOL", "MARGIN_TOL", "ROW_ATOL",
]

__version__ = "0.1.0"
