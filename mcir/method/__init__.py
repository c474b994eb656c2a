"""The paper's method (MCIR, "learning from history"): Eq. 1 in ``eq1_negatives.py``, Eq. 2–4 in ``eq2_4_spn.py``."""

from mcir.method.eq1_negatives import NegativeBank
from mcir.method.eq2_4_spn import SPNLoss, adaptive_lambda, spn_term

__all__ = ["NegativeBank", "SPNLoss", "adaptive_lambda", "spn_term"]
