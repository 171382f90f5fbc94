"""medcurate: versioned training datasets for Chinese medical LLMs, annotation, and a thin trainer."""

__version__ = "0.1.0"
