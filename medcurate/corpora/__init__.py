"""Readers for the public Chinese medical corpora the papers train and evaluate on."""
