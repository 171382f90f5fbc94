"""Build engines: how a recipe's rows flow through its steps.

``local`` streams batches through row-local steps and runs whole-pass steps as bounded
two-pass operations over disk spills (``medcurate.engines.local``); ``memory`` holds every
row at once (the reference the streaming engine is checked against); ``ray`` runs the
row-local steps as Ray Data batch maps (``medcurate.engines.ray``, imported only when used).
All three publish the same version for the same recipe and inputs.
"""
from __future__ import annotations

ENGINES = ("local", "memory", "ray")
