"""headroom_core: keep LLM context inside its budget without breaking correctness.

Framework-neutral: this package imports no LLM framework, provider SDK, torch or
sentence-transformers. Messages are OpenAI chat-format dicts; see
:mod:`headroom_core.messages` for the Anthropic conversion.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import (
        CacheAlignerConfig,
        CompactionConfig,
        HeadroomConfig,
        IntelligentContextConfig,
        RelevanceScorerConfig,
        RollingWindowConfig,
        ScoringWeights,
        SmartCrusherConfig,
    )
    from .errors import (
        BudgetError,
        ConfigError,
        HeadroomError,
        InputError,
        PairingError,
        StorageError,
        TokenizerError,
    )
    from .messages import find_tool_units, from_anthropic, to_anthropic, validate_pairing
    from .pipeline import (
        CompressResult,
        SimulationResult,
        TransformPipeline,
        compress,
        simulate,
    )
    from .providers import AnthropicProvider, OpenAIProvider
    from .relevance import (
        BM25Scorer,
        EmbeddingScorer,
        HybridScorer,
        create_scorer,
        embedding_available,
    )
    from .report import generate_report
    from .tokens import Tokenizer, count_tokens_messages, count_tokens_text
    from .transforms._base import Transform, TransformResult
    from .transforms.cache_aligner import CacheAligner
    from .transforms.rolling_window import RollingWindow
    from .transforms.smart_crusher import SmartCrusher
    from .waste import WasteSignals, detect_waste

# Public name -> submodule. Loaded on first use, so `import headroom_core` stays cheap
# (pydantic, tiktoken and the regex tables load only when something needs them).
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(
        [
            "CacheAlignerConfig",
            "CompactionConfig",
            "HeadroomConfig",
            "IntelligentContextConfig",
            "RelevanceScorerConfig",
            "RollingWindowConfig",
            "ScoringWeights",
            "SmartCrusherConfig",
        ],
        "config",
    ),
    **dict.fromkeys(
        [
            "BudgetError",
            "ConfigError",
            "HeadroomError",
            "InputError",
            "PairingError",
            "StorageError",
            "TokenizerError",
        ],
        "errors",
    ),
    **dict.fromkeys(
        ["find_tool_units", "from_anthropic", "to_anthropic", "validate_pairing"], "messages"
    ),
    **dict.fromkeys(
        ["CompressResult", "SimulationResult", "TransformPipeline", "compress", "simulate"],
        "pipeline",
    ),
    **dict.fromkeys(["Transform", "TransformResult"], "transforms._base"),
    "CacheAligner": "transforms.cache_aligner",
    "RollingWindow": "transforms.rolling_window",
    "SmartCrusher": "transforms.smart_crusher",
    **dict.fromkeys(
        [
            "BM25Scorer",
            "EmbeddingScorer",
            "HybridScorer",
            "create_scorer",
            "embedding_available",
        ],
        "relevance",
    ),
    **dict.fromkeys(["AnthropicProvider", "OpenAIProvider"], "providers"),
    "generate_report": "report",
    **dict.fromkeys(["Tokenizer", "count_tokens_messages", "count_tokens_text"], "tokens"),
    **dict.fromkeys(["WasteSignals", "detect_waste"], "waste"),
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'headroom_core' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__version__ = "0.1.0"

__all__ = [
    "AnthropicProvider",
    "BM25Scorer",
    "BudgetError",
    "CacheAligner",
    "CacheAlignerConfig",
    "CompactionConfig",
    "CompressResult",
    "ConfigError",
    "EmbeddingScorer",
    "HeadroomConfig",
    "HeadroomError",
    "HybridScorer",
    "InputError",
    "IntelligentContextConfig",
    "OpenAIProvider",
    "PairingError",
    "RelevanceScorerConfig",
    "RollingWindow",
    "RollingWindowConfig",
    "ScoringWeights",
    "SimulationResult",
    "SmartCrusher",
    "SmartCrusherConfig",
    "StorageError",
    "Tokenizer",
    "TokenizerError",
    "Transform",
    "TransformPipeline",
    "TransformResult",
    "WasteSignals",
    "__version__",
    "compress",
    "count_tokens_messages",
    "count_tokens_text",
    "create_scorer",
    "detect_waste",
    "embedding_available",
    "find_tool_units",
    "from_anthropic",
    "generate_report",
    "simulate",
    "to_anthropic",
    "validate_pairing",
]
