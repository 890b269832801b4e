from __future__ import annotations

import re

import pytest

from headroom_core import (
    CacheAlignerConfig,
    ConfigError,
    HeadroomConfig,
    IntelligentContextConfig,
    RelevanceScorerConfig,
    RollingWindowConfig,
    ScoringWeights,
    SmartCrusherConfig,
)


def test_seed_defaults() -> None:
    sc = SmartCrusherConfig()
    assert (sc.min_tokens_to_crush, sc.max_items_after_crush, sc.min_items_to_analyze) == (
        200,
        15,
        5,
    )
    assert RollingWindowConfig().output_buffer_tokens == 4000
    assert RelevanceScorerConfig().bm25_k1 == 1.5 and RelevanceScorerConfig().hybrid_alpha == 0.5
    assert IntelligentContextConfig().keep_last_turns == 2
    assert CacheAlignerConfig().normalize_whitespace is True
    assert HeadroomConfig().mode == "optimize"


def test_weights_normalized_sum_to_one() -> None:
    w = ScoringWeights(
        recency=2,
        semantic_similarity=1,
        toin_importance=1,
        error_indicator=0,
        forward_reference=0,
        token_density=0,
    ).normalized()
    assert w.recency == pytest.approx(0.5) and w.semantic_similarity == pytest.approx(0.25)
    assert sum(w.model_dump().values()) == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="at least one weight"):
        ScoringWeights(
            recency=0,
            semantic_similarity=0,
            toin_importance=0,
            error_indicator=0,
            forward_reference=0,
            token_density=0,
        )


@pytest.mark.parametrize(
    "make,field",
    [
        (
            lambda: SmartCrusherConfig(min_tokens_to_crush=-1),
            "SmartCrusherConfig.min_tokens_to_crush",
        ),
        (
            lambda: SmartCrusherConfig(max_items_after_crush="many"),
            "SmartCrusherConfig.max_items_after_crush",
        ),
        (lambda: HeadroomConfig(mode="fast"), "HeadroomConfig.mode"),
        (lambda: RelevanceScorerConfig(hybrid_alpha=1.5), "RelevanceScorerConfig.hybrid_alpha"),
        (lambda: CacheAlignerConfig(extract_date=True), "CacheAlignerConfig.extract_date"),
        (
            lambda: HeadroomConfig(rolling_window={"preserve_recent_turns": -2}),
            "HeadroomConfig.rolling_window.preserve_recent_turns",
        ),
    ],
)
def test_wrong_values_name_the_field(make, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        make()
    assert field in str(info.value)
    assert isinstance(info.value, ValueError)


def test_configs_are_frozen() -> None:
    cfg = SmartCrusherConfig()
    with pytest.raises(Exception, match="frozen"):
        cfg.keep_first = 9  # type: ignore[misc]


@pytest.mark.parametrize(
    ("profiles", "needle"),
    [
        ({"search": {"max_array_itmes": 5}}, "unknown key(s) ['max_array_itmes']"),
        ({"search": {"max_array_items": 0}}, "values must be >= 1"),
        ({"search": {"max_tokens": "many"}}, "tool_profiles.search.max_tokens"),
    ],
)
def test_tool_profiles_name_what_is_wrong(profiles: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(needle)):
        SmartCrusherConfig(tool_profiles=profiles)


def test_reference_names_map_onto_ours_and_both_names_are_refused() -> None:
    rw = RollingWindowConfig(preserve_system=False)
    assert rw.keep_system is False and "preserve_system" not in rw.model_dump()
    assert RollingWindowConfig(**rw.model_dump()) == rw  # dumps under our names, round-trips
    with pytest.raises(ConfigError, match="preserve_system is another name for keep_system"):
        RollingWindowConfig(preserve_system=True, keep_system=True)


def test_reference_values_we_cannot_honour_say_why() -> None:
    with pytest.raises(ConfigError, match="drop_oldest_first.*always drops the oldest"):
        RollingWindowConfig(drop_oldest_first=False)
    with pytest.raises(ConfigError, match=r"RollingWindowConfig\.max_tokens"):
        RollingWindowConfig(max_tokens=0)


def test_none_means_the_default_embedding_model() -> None:
    assert RelevanceScorerConfig(embedding_model=None) == RelevanceScorerConfig()
    assert IntelligentContextConfig().toin_integration is True
