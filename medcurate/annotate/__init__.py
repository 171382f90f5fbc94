"""Human preference annotation in Label Studio: SPF pairwise comparisons, rankings and
acceptable/unacceptable feedback, cross-annotated and adjudicated, exported as ``preference``
datasets (see docs/annotation.md).

Modules: ``sampling`` (candidate answers), ``configs`` (project kinds and label configs),
``server`` (retrying Label Studio client), ``workdir`` (the project's work folder),
``units`` (candidates -> tasks and assignment), ``votes`` (resolving judgements),
``reports`` (agreement), ``workflows`` (push / pull / resolve), ``sources`` (the annotations reader),
``agreement`` (kappa and alpha), ``judge`` (LLM pre-annotations), ``steps`` (export).
"""
