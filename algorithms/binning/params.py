"""Parameters of a vertical binning (WOE/IV) job, shared by every party.

What it reveals to whom: the parameters are public to the job's parties.
"""

from __future__ import annotations

from dataclasses import dataclass

from algorithms.api import AlgorithmParams, ParamsError
from algorithms.paillier import MIN_KEY_BITS


@dataclass(frozen=True)
class BinningParams(AlgorithmParams):
    """Binning, optimal merging and IV selection.

    ``method``: ``quantile`` (default) or ``equal_width``; ``n_bins``: bins per numeric characteristic
    (fine bins when ``optimal``); ``categorical``: names of categorical characteristics (each party's own;
    a name that is not one of a party's columns is ignored there). ``min_bin_rows``: the smallest bin a host
    reveals counts of (bins below it are refused before anything is sent; counts of a tiny bin are close to
    row-level facts) and the smallest bin the optimal merge produces. ``optimal``: the bank merges every
    characteristic's fine bins (monotonic WOE unless ``monotonic`` is false) into at most ``max_bins``.
    ``iv_threshold`` / ``top_k``: keep characteristics whose IV reaches the threshold and / or the ``top_k``
    largest across all parties (0 = no limit). ``adjustment``: added to both counts of a bin with no event or
    no non-event before WOE is formed (FATE's 0.5).
    ``key_bits``: the bank's Paillier key (>= 2048). ``seed``: the job seed (shuffles are drawn from the OS
    CSPRNG, never from it).
    """

    method: str = "quantile"
    n_bins: int = 10
    categorical: tuple[str, ...] = ()
    min_bin_rows: int = 50
    optimal: bool = False
    monotonic: bool = True
    max_bins: int = 6
    iv_threshold: float = 0.0
    top_k: int = 0
    adjustment: float = 0.5
    seed: int = 0
    key_bits: int = MIN_KEY_BITS  # the bank's Paillier modulus

    def __post_init__(self) -> None:
        if self.method not in ("quantile", "equal_width"):
            raise ParamsError(f"method must be 'quantile' or 'equal_width', got {self.method!r}")
        if not (isinstance(self.n_bins, int) and 2 <= self.n_bins <= 256):
            raise ParamsError(f"n_bins must be an integer in [2, 256], got {self.n_bins!r}")
        if isinstance(self.categorical, list):
            object.__setattr__(self, "categorical", tuple(self.categorical))
        if not all(isinstance(c, str) for c in self.categorical):
            raise ParamsError("categorical must be a list of characteristic names")
        if not (isinstance(self.min_bin_rows, int) and self.min_bin_rows >= 1):
            raise ParamsError(f"min_bin_rows must be an integer >= 1, got {self.min_bin_rows!r}")
        if not (isinstance(self.max_bins, int) and self.max_bins >= 2):
            raise ParamsError(f"max_bins must be an integer >= 2, got {self.max_bins!r}")
        if not (isinstance(self.top_k, int) and self.top_k >= 0):
            raise ParamsError(f"top_k must be an integer >= 0, got {self.top_k!r}")
        if not (isinstance(self.iv_threshold, int | float) and self.iv_threshold >= 0):
            raise ParamsError(f"iv_threshold must be >= 0, got {self.iv_threshold!r}")
        if not (isinstance(self.adjustment, int | float) and self.adjustment > 0):
            raise ParamsError(f"adjustment must be > 0, got {self.adjustment!r}")
        if not (isinstance(self.key_bits, int) and self.key_bits >= MIN_KEY_BITS):
            raise ParamsError(f"key_bits must be an integer >= {MIN_KEY_BITS}, got {self.key_bits!r}")
        for flag in ("optimal", "monotonic"):
            if not isinstance(getattr(self, flag), bool):
                raise ParamsError(f"{flag} must be true or false")
