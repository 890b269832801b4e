"""headroom_core: keep LLM context inside its budget without breaking correctness.

Framework-neutral: this package imports no LLM framework, provider SDK, torch or
sentence-transformers. Messages are OpenAI chat-format dicts; see
:mod:`headroom_core.messages` for the Anthropic conversion.
"""

from __future__ import annotations

from .config import (
    CacheAlignerConfig,
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
    Transform,
    TransformPipeline,
    TransformResult,
    compress,
    simulate,
)
from .providers import AnthropicProvider, OpenAIProvider
from .tokens import Tokenizer, count_tokens_messages, count_tokens_text
from .waste import WasteSignals, detect_waste

__version__ = "0.1.0"

__all__ = [
    "AnthropicProvider",
    "BudgetError",
    "CacheAlignerConfig",
    "CompressResult",
    "ConfigError",
    "HeadroomConfig",
    "HeadroomError",
    "InputError",
    "IntelligentContextConfig",
    "OpenAIProvider",
    "PairingError",
    "RelevanceScorerConfig",
    "RollingWindowConfig",
    "ScoringWeights",
    "SimulationResult",
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
    "detect_waste",
    "find_tool_units",
    "from_anthropic",
    "simulate",
    "to_anthropic",
    "validate_pairing",
]
