"""Clusters of duplicates and the one document each keeps.

The kept document of a cluster is chosen by a deterministic rule, so reruns and
different partitionings agree: most images, then longest text, then smallest
doc_id, then the record that comes first in the input (smallest ``rid``, for records
that share a doc_id).
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


def preference_rank(doc_id: np.ndarray, rid: np.ndarray, num_images: np.ndarray,
                    text_len: np.ndarray) -> np.ndarray:
    """rank[node]: lower is kept first."""
    order = np.lexsort((rid, doc_id, -text_len, -num_images))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank


def group_winners(members: np.ndarray, labels: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """For each member (dense node id) the best-ranked node carrying the same label."""
    if len(members) == 0:
        return members
    _, dense = np.unique(labels, return_inverse=True)
    best = np.full(dense.max() + 1, np.iinfo(np.int64).max)
    np.minimum.at(best, dense, rank[members])
    by_rank = np.empty(len(rank), dtype=np.int64)
    by_rank[rank] = np.arange(len(rank))
    return by_rank[best[dense]]


def connected_labels(n: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Component label of every node of an undirected graph (scipy, iterative)."""
    graph = coo_matrix((np.ones(len(u), np.int8), (u, v)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def follow(rep: np.ndarray) -> np.ndarray:
    """Resolve chains of 'replaced by' links to the final survivor of each node."""
    while True:
        nxt = rep[rep]
        if np.array_equal(nxt, rep):
            return rep
        rep = nxt
