"""Near-duplicate clusters by MinHash over character n-grams (datasketch's LSH).

Chinese has no spaces, so shingles are character n-grams of the row's text with whitespace
and punctuation removed. Rows are visited in a fixed order (longest text first, then by a
content hash), so which row of a cluster is kept does not depend on the input order: the
longest, and among equals the one with the smallest hash.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
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
    order = sorted(range(len(texts)), key=lambda i: (*_visiting_key(texts[i]), i))
    result = Clusters()
    _greedy(order, lambda index: minhash(texts[index], ngram, num_perm), threshold, num_perm, result)
    return result


def _visiting_key(text: str) -> tuple[int, bytes]:
    """Longest first, then by content hash (the order ``near_duplicate_clusters`` visits rows in)."""
    return -len(content_chars(text)), hashlib.sha1(text.encode("utf-8")).digest()


def _greedy(order: list[int], signature_of: Callable[[int], MinHash], threshold: float, num_perm: int,
            result: Clusters) -> None:
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    kept: dict[int, MinHash] = {}
    for index in order:
        signature = signature_of(index)
        candidates = sorted(int(key) for key in lsh.query(signature))
        match = next((c for c in candidates if kept[c].jaccard(signature) >= threshold), None)
        if match is None:
            lsh.insert(str(index), signature)
            kept[index] = signature
            result.kept.append(index)
        else:
            result.duplicate_of[index] = match


class StreamedClusters:
    """``near_duplicate_clusters`` over a stream of rows in bounded memory, with the same result.

    Two rows can only meet in the greedy pass if they share an LSH band bucket, so it runs on
    each group of rows linked by shared buckets on its own (rows in no shared bucket are kept
    without a pass). What a row leaves behind until then: its signature (8 bytes a permutation,
    on disk), its visiting key (28 bytes, on disk), and one 128-bit key per LSH band (in the
    hash-bucketed files dedupe uses, each bucket sorted on its own). Memory then holds one group
    at a time."""

    def __init__(self, folder: Path, threshold: float, ngram: int, num_perm: int):
        from medcurate.engines.spill import DigestBuckets

        folder.mkdir(parents=True, exist_ok=True)
        self.threshold, self.ngram, self.num_perm = threshold, ngram, num_perm
        self.ranges = MinHashLSH(threshold=threshold, num_perm=num_perm).hashranges
        self.bands = DigestBuckets(folder / "bands", 64)
        self.signature_path = folder / "signatures"
        self.key_path = folder / "keys"
        self.count = 0
        self.scheme = MinHash(num_perm=num_perm, seed=1).scheme   # what minhash() makes, to rebuild them

    def add(self, texts: list[str]) -> None:
        from medcurate.engines.spill import parse_digests

        signatures = np.empty((len(texts), self.num_perm), dtype=np.uint64)
        keys = np.empty(len(texts), dtype=_KEY)
        band_keys: list[bytes] = []
        for offset, text in enumerate(texts):
            signatures[offset] = minhash(text, self.ngram, self.num_perm).hashvalues
            keys[offset] = _visiting_key(text)
            band_keys.extend(hashlib.blake2b(b"%d:" % band + signatures[offset, start:end].tobytes(),
                                             digest_size=16).digest() for band, (start, end) in enumerate(self.ranges))
        with open(self.signature_path, "ab") as handle:
            signatures.tofile(handle)
        with open(self.key_path, "ab") as handle:
            keys.tofile(handle)
        high, low = parse_digests(band_keys)
        positions = np.repeat(np.arange(self.count, self.count + len(texts), dtype=np.uint64), len(self.ranges))
        self.bands.add_at(positions, high, low)
        self.count += len(texts)

    def finish(self) -> Clusters:
        parent = np.arange(self.count, dtype=np.int64)

        def root(position: int) -> int:
            while parent[position] != position:
                parent[position] = parent[parent[position]]
                position = int(parent[position])
            return position

        for run in self.bands.runs():
            first = root(int(run[0]))
            for position in run[1:].tolist():
                other = root(position)
                if other != first:
                    first, other = min(first, other), max(first, other)
                    parent[other] = first
        roots: np.ndarray = parent
        while not np.array_equal(jumped := roots[roots], roots):
            roots = jumped
        result = Clusters()
        if not self.count:
            return result
        signatures = np.memmap(self.signature_path, dtype=np.uint64, mode="r", shape=(self.count, self.num_perm))
        keys = np.fromfile(self.key_path, dtype=_KEY)
        order = np.lexsort((np.arange(self.count), keys["digest"], keys["length"]))
        grouped = np.argsort(roots[order], kind="stable")
        members = order[grouped]
        bounds = np.flatnonzero(np.diff(roots[members])) + 1
        for group in np.split(members, bounds):
            if len(group) == 1:
                result.kept.append(int(group[0]))
                continue
            indices = group.tolist()
            _greedy(indices, lambda index: MinHash(num_perm=self.num_perm, seed=1, hashvalues=signatures[index], scheme=self.scheme),
                    self.threshold, self.num_perm, result)
        self.signature_path.unlink(missing_ok=True)
        self.key_path.unlink(missing_ok=True)
        return result


_KEY = np.dtype([("length", "<i8"), ("digest", "S20")])
