"""Near-duplicate clusters by MinHash over character n-grams (datasketch's LSH).

Chinese has no spaces, so shingles are character n-grams of the row's text with whitespace
and punctuation removed. Rows are visited in a fixed order (longest text first, then by a
content hash), so which row of a cluster is kept does not depend on the input order: the
longest, and among equals the one with the smallest hash.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from datasketch import MinHash, MinHashLSH

_NOT_CONTENT = re.compile(r"[\W_]+", re.UNICODE)


def content_chars(text: str) -> str:
    """Letters, digits and CJK characters only, lower-cased: the text n-grams are taken from."""
    return _NOT_CONTENT.sub("", text).lower()


def shingles(text: str, n: int) -> set[str]:
    chars = content_chars(text)
    if len(chars) <= n:
        return {chars} if chars else set()
    return {chars[i:i + n] for i in range(len(chars) - n + 1)}


def minhash(text: str, n: int, num_perm: int) -> MinHash:
    signature = MinHash(num_perm=num_perm, seed=1)
    signature.update_batch([s.encode("utf-8") for s in sorted(shingles(text, n))])
    return signature


@dataclass
class Clusters:
    """``kept`` in the visiting order; ``duplicate_of[i] = j`` for each dropped row i of j's cluster."""

    kept: list[int] = field(default_factory=list)
    duplicate_of: dict[int, int] = field(default_factory=dict)

    @property
    def cluster_sizes(self) -> dict[int, int]:
        sizes: dict[int, int] = {}
        for keeper in self.duplicate_of.values():
            sizes[keeper] = sizes.get(keeper, 1) + 1
        return sizes


def near_duplicate_clusters(texts: list[str], *, threshold: float = 0.8, ngram: int = 5,
                            num_perm: int = 128) -> Clusters:
    """Greedy clustering: each row joins the first kept row it is estimated to be at least
    ``threshold`` Jaccard-similar to, else it is kept and starts a cluster."""
    order = sorted(range(len(texts)), key=lambda i: (-len(content_chars(texts[i])),
                                                     hashlib.sha1(texts[i].encode("utf-8")).hexdigest(), i))
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    signatures: dict[int, MinHash] = {}
    result = Clusters()
    for index in order:
        signature = minhash(texts[index], ngram, num_perm)
        candidates = sorted(int(key) for key in lsh.query(signature))
        match = next((c for c in candidates if signatures[c].jaccard(signature) >= threshold), None)
        if match is None:
            lsh.insert(str(index), signature)
            signatures[index] = signature
            result.kept.append(index)
        else:
            result.duplicate_of[index] = match
    return result
