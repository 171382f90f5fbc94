"""LLM-assisted cleaning and synthesis through any OpenAI-compatible endpoint (IvyGPT, MedGo).

``engine`` holds the one client everything uses (recipe steps, ``annotate sample``, the
judge); ``sources`` reads drug labels and guidelines; ``steps`` registers the recipe steps.
"""
