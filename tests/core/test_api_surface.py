"""The public API is pinned, and importing the core loads no framework or heavy library."""

from __future__ import annotations

import json
import subprocess
import sys

import headroom_core

PUBLIC = [
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

FORBIDDEN = (
    "langchain",
    "langchain_core",
    "llama_index",
    "openai",
    "anthropic",
    "torch",
    "sentence_transformers",
    "transformers",
    "numpy",
    "requests",
    "httpx",
)
# The shared stores' drivers: imported by one module each, loaded only when such a URL is
# opened (never by `import headroom_core` or a default compress()).
DRIVERS = {"psycopg": "_postgres.py", "psycopg_pool": "_postgres.py", "redis": "_redis.py"}


def test_public_api_is_pinned() -> None:
    assert sorted(headroom_core.__all__) == sorted(PUBLIC)
    for name in PUBLIC:
        assert getattr(headroom_core, name) is not None


def test_importing_core_loads_no_framework_or_heavy_library() -> None:
    code = (
        "import sys, json, headroom_core, headroom_core.metrics, headroom_core.cli; "
        "headroom_core.compress([{'role': 'user', 'content': 'hi'}]); "
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout)
    offenders = [m for m in loaded if m.split(".")[0] in (*FORBIDDEN, *DRIVERS)]
    assert offenders == []


def test_core_source_never_imports_frameworks() -> None:
    from pathlib import Path

    root = Path(headroom_core.__file__).parent
    for path in root.rglob("*.py"):
        for line in path.read_text("utf-8").splitlines():
            stripped = line.strip()
            if stripped.startswith(("import ", "from ")):
                module = stripped.split()[1].lstrip(".").split(".")[0]
                assert module not in FORBIDDEN, f"{path.name}: {stripped}"
                if module in DRIVERS:
                    assert path.parent == root and path.name == DRIVERS[module], path
