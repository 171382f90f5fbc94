"""Precise filters for the noise torch commands print on every run, nothing broader.

* bitsandbytes logs a warning on import on CPUs with AVX512-BF16 when the optional ``kernels``
  package is absent: it falls back to its own kernel, so nothing is wrong.
* transformers / TRL deprecation ``FutureWarning``s raised inside those libraries, about their
  own internal calls (not about anything medcurate or the user passes).

Errors and every other warning still show.
"""
from __future__ import annotations

import logging
import warnings

_KERNELS_MESSAGE = "Failed to load CPU gemm_4bit_forward from kernels-community"
_LIBRARY_MODULES = r"(transformers|trl|peft|accelerate|torch)(\..*)?"


class _DropKernelsFallback(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_KERNELS_MESSAGE)


_installed = False


def silence_torch_warnings() -> None:
    """Install the filters once, before bitsandbytes / transformers are imported."""
    global _installed
    if _installed:
        return
    _installed = True
    logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(_DropKernelsFallback())
    warnings.filterwarnings("ignore", category=FutureWarning, module=_LIBRARY_MODULES)
    warnings.filterwarnings("ignore", message=r"`torch\.jit\.script_method` is deprecated", category=DeprecationWarning)
