"""Configuration models.

Every model is a frozen pydantic v2 model with ``extra="forbid"``: a misspelt or
wrong-typed field fails at construction with a :class:`~headroom_core.errors.ConfigError`
whose message names the field. Names and defaults follow the seeds' API
(headroom's ``SmartCrusherConfig``, ``CacheAlignerConfig``, ...).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError

Mode = Literal["audit", "optimize", "off"]
Fitter = Literal["rolling_window", "intelligent_context", "none"]
#: What a ``SmartCrusherConfig.tool_profiles`` entry may set (``max_items_after_crush`` is
#: the seeds' name for ``max_array_items``).
TOOL_PROFILE_KEYS = ("max_array_items", "max_items_after_crush", "max_tokens")
MODES: tuple[Mode, ...] = get_args(Mode)
FITTERS: tuple[Fitter, ...] = get_args(Fitter)


class _Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True, defer_build=True)

    #: The prior art's names for some of our fields (its name -> ours), accepted as inputs:
    #: the value is stored under our name, and giving both names is an error.
    reference_names: ClassVar[dict[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _from_reference_names(cls, data: Any) -> Any:
        if not cls.reference_names or not isinstance(data, dict):
            return data
        out = dict(data)
        for theirs, ours in cls.reference_names.items():
            if theirs in out:
                if ours in out:
                    raise ValueError(f"{theirs} is another name for {ours}: pass one of them")
                out[ours] = out.pop(theirs)
        return out

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            problems = _problems(exc)
            name = type(self).__name__
            message = "; ".join(
                f"{name}.{path}: {msg} (got {value!r})" for path, msg, value in problems
            )
            error = ConfigError(message)
            error.problems = problems  # type: ignore[attr-defined]
            raise error from exc


def _problems(exc: ValidationError) -> list[tuple[str, str, Any]]:
    """(dotted field path, message, offending value) for each error, nested configs flattened."""
    out: list[tuple[str, str, Any]] = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"])
        inner = (err.get("ctx") or {}).get("error")
        if isinstance(inner, ConfigError) and hasattr(inner, "problems"):
            out.extend((f"{path}.{p}" if path else p, m, v) for p, m, v in inner.problems)
        else:
            out.append((path or "(model)", err["msg"], err.get("input")))
    return out


class SmartCrusherConfig(_Config):
    enabled: bool = Field(True, description="Compress JSON tool outputs.")
    min_items_to_analyze: int = Field(
        5, ge=0, description="Arrays shorter than this are left whole."
    )
    min_tokens_to_crush: int = Field(
        200, ge=0, description="Lossy cuts only above this many tokens."
    )
    lossless_below_tokens: int = Field(
        1000,
        ge=0,
        description="A JSON output whose lossless form (compact JSON or the table / "
        "constant-column / repeat forms) is under this many tokens is never cut.",
    )
    max_items_after_crush: int = Field(15, ge=1, description="Target item count after a lossy cut.")
    keep_first: int = Field(3, ge=0, description="Items always kept from the start of an array.")
    keep_last: int = Field(2, ge=0, description="Items always kept from the end of an array.")
    preserve_errors: bool = Field(True, description="Never drop error items.")
    anomaly_std_threshold: float = Field(
        2.0, gt=0, description="Std devs that make a numeric anomaly."
    )
    relevance_threshold: float = Field(
        0.25, ge=0, le=1, description="Keep items scoring above this."
    )
    max_string_chars: int = Field(2000, ge=64, description="Longer strings are cut with a marker.")
    tool_profiles: dict[str, dict[str, int]] = Field(
        default_factory=dict,
        description="Per-tool overrides, e.g. {'search': {'max_array_items': 5}}.",
    )
    never_compress_tools: tuple[str, ...] = Field((), description="Tool names never touched.")
    reversible: bool = Field(
        True,
        description="True: lossy cuts store their original and leave a marker naming its ref "
        "(for a caller that gives the model headroom_retrieve). False: the caller cannot "
        "retrieve, so tool outputs get only lossless forms and the one cut whose marker says "
        "what it omitted (repeated log lines collapsed to their template, with count and "
        "line range); nothing is stored.",
    )

    @field_validator("tool_profiles")
    @classmethod
    def _known_profile_keys(cls, profiles: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
        for tool, profile in profiles.items():
            unknown = sorted(set(profile) - set(TOOL_PROFILE_KEYS))
            if unknown:
                raise ValueError(
                    f"tool {tool!r}: unknown key(s) {unknown}; known: {list(TOOL_PROFILE_KEYS)}"
                )
            low = {k: v for k, v in profile.items() if v < 1}
            if low:
                raise ValueError(f"tool {tool!r}: values must be >= 1, got {low}")
        return profiles


class CacheAlignerConfig(_Config):
    enabled: bool = Field(True, description="Move dynamic content out of the stable prefix.")
    extract_dates: bool = Field(True, description="Move dates, times, UUIDs and request ids.")
    normalize_whitespace: bool = Field(
        True, description="Collapse trailing and repeated blank lines."
    )
    stable_prefix_min_tokens: int = Field(0, ge=0, description="Align only prefixes this long.")
    dynamic_tail_separator: str = Field(
        "\n\n---\n[Dynamic Context]\n",
        min_length=1,
        pattern=r"\S",
        description="Separator before the moved dynamic block (must hold a visible character).",
    )


class RollingWindowConfig(_Config):
    """The reference's ``preserve_system`` is ``keep_system``; its ``max_tokens`` and
    ``drop_oldest_first`` are fields here (see their descriptions)."""

    reference_names: ClassVar[dict[str, str]] = {"preserve_system": "keep_system"}

    enabled: bool = Field(True, description="Enforce the token budget by dropping oldest units.")
    max_tokens: int | None = Field(
        None,
        ge=1,
        description="The most tokens the messages may take, output buffer included: the window "
        "is the smaller of this and the model's (or compress(max_tokens=)). None: the model's.",
    )
    keep_system: bool = Field(
        True, description="Never drop system messages (the reference's preserve_system)."
    )
    drop_oldest_first: bool = Field(
        True,
        description="Always True: RollingWindow drops the oldest units first. For least "
        "important first, use the intelligent_context fitter.",
    )
    preserve_recent_turns: int = Field(2, ge=0, description="Last N user turns never dropped.")
    preserve_recent_tool_units: int = Field(
        2, ge=0, description="Within those turns, tool units older than the last N may go."
    )
    output_buffer_tokens: int = Field(4000, ge=0, description="Tokens reserved for the reply.")
    cut_quantum: float = Field(
        0.2,
        gt=0,
        le=1,
        description="Cuts free a multiple of this share of the budget, so a growing history "
        "is cut in a few steps and its prefix stays byte-stable in between.",
    )

    @field_validator("drop_oldest_first")
    @classmethod
    def _oldest_first_only(cls, value: bool) -> bool:
        if not value:
            raise ValueError(
                "RollingWindow always drops the oldest units first; to drop the least "
                "important units first, use IntelligentContextConfig(enabled=True) "
                "(HeadroomConfig(fitter='intelligent_context'))"
            )
        return value


class CompactionConfig(_Config):
    """When a growing session is rewritten (a *compaction point*), and how far a fit cuts.

    Between compaction points every request is a byte-for-byte extension of the previous
    one, so the provider's prompt cache holds all of it. At a compaction point superseded
    tool outputs (a read of a file edited since, a command run again, an old todo list)
    become one-line pointers with a ref. A compaction is made when the tokens it saves on
    each of ``horizon_requests`` later requests, read from the cache, outweigh the one-time
    cost of writing the rewritten part to the cache again (priced from the model table), and
    it saves at least ``min_saving_tokens``; or when the request no longer fits its window.
    """

    enabled: bool = Field(
        True, description="Collapse superseded tool outputs at compaction points."
    )
    horizon_requests: int = Field(
        25,
        ge=0,
        description="Later requests a compaction's saving is counted over when weighing it "
        "against the cache write it causes.",
    )
    min_saving_tokens: int = Field(
        4000, ge=0, description="A voluntary compaction must save at least this many tokens."
    )
    min_output_tokens: int = Field(
        120,
        ge=60,
        description="When a request must be cut to fit, tool outputs are cut down to this "
        "many tokens before whole turns are dropped.",
    )
    keep_first_share: float = Field(
        0.2,
        ge=0,
        le=1,
        description="When whole turns must be dropped, the turns right after the task up to "
        "this share of the budget stay (drops happen after them, so the provider's cache "
        "keeps the system prompt, the task and these turns).",
    )
    cached_price_ratio: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Price of a cached input token / an uncached one (None: the model table).",
    )
    write_price_ratio: float | None = Field(
        None,
        ge=0,
        description="Price of an input token written to the cache / an uncached one "
        "(None: the provider's, 1.25 for Anthropic, 1.0 for OpenAI).",
    )


class ScoringWeights(_Config):
    recency: float = Field(0.20, ge=0)
    semantic_similarity: float = Field(0.20, ge=0)
    toin_importance: float = Field(0.25, ge=0)
    error_indicator: float = Field(0.15, ge=0)
    forward_reference: float = Field(0.15, ge=0)
    token_density: float = Field(0.05, ge=0)

    @model_validator(mode="after")
    def _some_weight(self) -> ScoringWeights:
        if sum(self.model_dump().values()) <= 0:
            raise ValueError("at least one weight must be positive")
        return self

    def normalized(self) -> ScoringWeights:
        """The same weights scaled to sum to 1."""
        values = self.model_dump()
        total = sum(values.values())
        return ScoringWeights(**{k: v / total for k, v in values.items()})


class IntelligentContextConfig(_Config):
    enabled: bool = Field(
        False,
        description="Score units and cut the least important first (instead of the oldest, "
        "as RollingWindow does); off by default because oldest-first keeps caches warmer.",
    )
    keep_system: bool = Field(True, description="Never drop system messages.")
    keep_last_turns: int = Field(2, ge=0, description="Last N user turns never dropped.")
    keep_last_tool_units: int = Field(
        2, ge=0, description="Within those turns, tool units older than the last N may go."
    )
    output_buffer_tokens: int = Field(4000, ge=0, description="Tokens reserved for the reply.")
    use_importance_scoring: bool = Field(True, description="Rank by ScoringWeights, else by age.")
    scoring_weights: ScoringWeights = Field(default_factory=ScoringWeights)
    toin_integration: bool = Field(
        True,
        description="Rank units by what TOIN learned from retrievals (the toin_importance "
        "signal); False: that signal is 0 and no TOIN is consulted.",
    )
    recency_decay_rate: float = Field(0.1, ge=0, description="Exponential decay per message.")
    compress_threshold: float = Field(0.1, ge=0, le=1, description="Compress units below this.")
    cut_quantum: float = Field(0.2, gt=0, le=1, description="As in RollingWindowConfig.")


class RelevanceScorerConfig(_Config):
    scorer_type: Literal["auto", "bm25", "embedding", "hybrid"] = Field(
        "auto",
        description="auto: BM25 on every per-request path (tool-output cuts, the context "
        "manager's similarity; milliseconds, no torch); embedding or hybrid: the MiniLM "
        "embeddings (the embeddings extra), used only when named. create_scorer('auto') "
        "alone picks the best available (the reference API).",
    )
    bm25_k1: float = Field(1.5, gt=0, description="BM25 term-frequency saturation.")
    bm25_b: float = Field(0.75, ge=0, le=1, description="BM25 length normalisation.")
    embedding_model: str = Field(
        "all-MiniLM-L6-v2",
        description="A shipped model name or a local model directory (None: the default).",
    )
    hybrid_alpha: float = Field(0.5, ge=0, le=1, description="BM25 weight in the hybrid score.")
    relevance_threshold: float = Field(
        0.25, ge=0, le=1, description="Items scoring at least this are relevant."
    )

    @field_validator("embedding_model", mode="before")
    @classmethod
    def _default_model(cls, value: Any) -> Any:
        return cls.model_fields["embedding_model"].default if value is None else value


class HeadroomConfig(_Config):
    """Top-level configuration for :func:`~headroom_core.compress` and the adapters."""

    mode: Mode = Field("optimize", description="audit: measure only; optimize: compress; off.")
    fitter: Fitter = Field(
        "rolling_window",
        description="What fits a request into its window: rolling_window (oldest units "
        "first), intelligent_context (least important first) or none. When not given, the "
        "reference's flags decide: intelligent_context.enabled, else rolling_window.enabled.",
    )
    smart_crusher: SmartCrusherConfig = Field(default_factory=SmartCrusherConfig)
    cache_aligner: CacheAlignerConfig = Field(default_factory=CacheAlignerConfig)
    rolling_window: RollingWindowConfig = Field(default_factory=RollingWindowConfig)
    intelligent_context: IntelligentContextConfig = Field(default_factory=IntelligentContextConfig)
    relevance: RelevanceScorerConfig = Field(default_factory=RelevanceScorerConfig)
    compaction: CompactionConfig = Field(default_factory=CompactionConfig)
    model_context_limits: dict[str, int] = Field(
        default_factory=dict, description="Override context windows by model name."
    )

    @model_validator(mode="before")
    @classmethod
    def _fitter_from_flags(cls, data: Any) -> Any:
        """No ``fitter`` given: the reference's ``enabled`` flags choose it."""
        if not isinstance(data, dict) or "fitter" in data:
            return data
        if _flag(data.get("intelligent_context"), default=False):
            fitter = "intelligent_context"
        elif _flag(data.get("rolling_window"), default=True):
            fitter = "rolling_window"
        else:
            fitter = "none"
        return {**data, "fitter": fitter}


def _flag(section: Any, *, default: bool) -> bool:
    """A sub-config's ``enabled`` flag, whether given as a model or a dict."""
    if isinstance(section, BaseModel):
        return bool(getattr(section, "enabled", default))
    if isinstance(section, dict):
        return bool(section.get("enabled", default))
    return default


__all__ = [
    "FITTERS",
    "MODES",
    "TOOL_PROFILE_KEYS",
    "CacheAlignerConfig",
    "Fitter",
    "HeadroomConfig",
    "IntelligentContextConfig",
    "Mode",
    "RelevanceScorerConfig",
    "RollingWindowConfig",
    "ScoringWeights",
    "SmartCrusherConfig",
]
