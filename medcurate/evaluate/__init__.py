"""Evaluation: generate answers for a held-out version, score them by row kind and task, judge two
runs pairwise, and write the papers' result tables. Only medcurate/evaluate/local.py imports torch."""
