"""Weight sanity check for imported checkpoints.

The official Evo1_LIBERO checkpoint carries ViT weights of magnitude ~1e37 (issue #41), which produce
huge activations and occasional NaNs; healthy weights are O(1). We flag non-finite values and absurd
magnitudes before such a model drives a robot (docs/evo1_checkpoints.md §5).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import torch

DEFAULT_MAX_ABS = 1e4


@dataclass(frozen=True)
class WeightIssue:
    """One suspicious tensor."""

    key: str
    non_finite: int
    max_abs: float

    def describe(self) -> str:
        if self.non_finite:
            return f"{self.key}: {self.non_finite} non-finite values"
        return f"{self.key}: max |w| = {self.max_abs:.3g}"


def find_weight_issues(
    state_dict: Mapping[str, torch.Tensor], max_abs: float = DEFAULT_MAX_ABS
) -> list[WeightIssue]:
    """Every floating tensor that holds NaN/inf or a value above `max_abs` in magnitude."""
    issues: list[WeightIssue] = []
    for key, tensor in state_dict.items():
        if not torch.is_floating_point(tensor) or tensor.numel() == 0 or tensor.device.type == "meta":
            continue
        t = tensor.detach()
        finite = torch.isfinite(t)
        non_finite = int((~finite).sum())
        largest = float(t[finite].abs().max()) if non_finite < t.numel() else float("nan")
        if non_finite or largest > max_abs:
            issues.append(WeightIssue(key=key, non_finite=non_finite, max_abs=largest))
    return issues


def warn_on_weight_issues(
    state_dict: Mapping[str, torch.Tensor], max_abs: float = DEFAULT_MAX_ABS, source: str = "checkpoint"
) -> list[WeightIssue]:
    """Run the check and emit one warning that lists the offending tensors (returns them too)."""
    issues = find_weight_issues(state_dict, max_abs)
    if issues:
        listed = "; ".join(issue.describe() for issue in issues[:10])
        more = f" (+{len(issues) - 10} more)" if len(issues) > 10 else ""
        warnings.warn(
            f"{source}: {len(issues)} tensor(s) look broken — {listed}{more}. Outputs may be huge or NaN; "
            "check the checkpoint before running it on a robot.",
            RuntimeWarning,
            stacklevel=2,
        )
    return issues
