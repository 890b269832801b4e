"""Adapters that put headroom_core inside LangChain, LlamaIndex and provider SDK clients.

Each adapter lives in its own subpackage and imports exactly one framework, installed as an
extra (``pip install "headroom-context[langchain]"``).
"""
