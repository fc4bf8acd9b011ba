"""Adaptive model selection: task features, quality posteriors, policies, budgets.

Plain, broker-free Python (numpy only): values in, values out, so the same code
runs in the distributor, in replay and in ``bench/routing.py``.

    features   TaskFeatures, extract_features, the rule-based category classifier
    posterior  BetaPosterior and its (discounted) update
    policies   Candidate, Selection, POLICIES (weighted, cheapest_above_floor,
               thompson, ucb, random, always_best), select (with manual override)
    budget     micro-dollar windows, limits, reserve / settle, cost forecasts
    decision   decide: budget filter + override + policy -> SelectionDecision
    learning   free quality labels from consensus agreement and feedback
"""

from .budget import (
    BudgetLimits,
    Reservation,
    ReserveDecision,
    SpendLedger,
    affordable,
    cost_weight_multiplier,
    day_key,
    estimate_cost_micros,
    month_key,
    remaining,
    reserve,
    settle,
)
from .decision import SelectionDecision, decide
from .features import (
    CATEGORIES,
    FeatureExtractor,
    RuleBasedExtractor,
    TaskFeatures,
    classify_category,
    estimate_tokens,
    extract_features,
)
from .learning import reward_from_consensus, reward_from_feedback
from .policies import (
    DEFAULT_POLICY,
    POLICIES,
    AlwaysBestPolicy,
    Candidate,
    CheapestAboveFloorPolicy,
    Policy,
    RandomPolicy,
    Selection,
    SelectionError,
    ThompsonPolicy,
    UcbPolicy,
    WeightedPolicy,
    get_policy,
    register_policy,
    select,
)
from .posterior import BetaPosterior, decay, update

__all__ = [
    "CATEGORIES",
    "DEFAULT_POLICY",
    "POLICIES",
    "AlwaysBestPolicy",
    "BetaPosterior",
    "BudgetLimits",
    "Candidate",
    "CheapestAboveFloorPolicy",
    "FeatureExtractor",
    "Policy",
    "RandomPolicy",
    "Reservation",
    "ReserveDecision",
    "RuleBasedExtractor",
    "Selection",
    "SelectionDecision",
    "SelectionError",
    "SpendLedger",
    "TaskFeatures",
    "ThompsonPolicy",
    "UcbPolicy",
    "WeightedPolicy",
    "affordable",
    "classify_category",
    "cost_weight_multiplier",
    "day_key",
    "decay",
    "decide",
    "estimate_cost_micros",
    "estimate_tokens",
    "extract_features",
    "get_policy",
    "month_key",
    "register_policy",
    "remaining",
    "reserve",
    "reward_from_consensus",
    "reward_from_feedback",
    "select",
    "settle",
    "update",
]
