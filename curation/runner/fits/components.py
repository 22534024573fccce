"""Connected components of an edge dataset, on Ray Data.

Alternating large-star / small-star (Kiveris et al., "Connected Components in
MapReduce and Beyond", 2014; the scheme of text-dedup's and BigCode's Spark MinHash):
each step is one shuffle of the edges by node, every component shrinks to a star
around its smallest node id in O(log^2 n) rounds, and no step holds more than one
node's neighbourhood. Once few enough edges are left they are finished in one task
(scipy), which is where small and medium corpora end at once.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import ray  # noqa: TID251 - the runner is where Ray lives

from curation.dedup.components import connected_labels
from curation.runner.fits.shuffle import by_key, partitions_for

LOCAL_EDGES = 2_000_000  # edges finished in one task (~50 MB of numpy)
MAX_ROUNDS = 64
_EDGE = pa.schema([("u", pa.int64()), ("v", pa.int64()), ("changed", pa.int64())])
LABELS = pa.schema([("node", pa.int64()), ("label", pa.int64())])


def _both_ways(batch: pa.Table) -> pa.Table:
    u, v = batch.column("u"), batch.column("v")
    return pa.table({"u": pa.concat_arrays([u.combine_chunks(), v.combine_chunks()]),
                     "v": pa.concat_arrays([v.combine_chunks(), u.combine_chunks()])})


def _unique_edges(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(u) == 0:
        return u, v
    pairs = np.unique(np.stack([u, v], axis=1), axis=0)
    return pairs[:, 0], pairs[:, 1]


def _neighbour_min(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (x, y) rows sorted by x, and m[x] = min(x, min of x's y) per row."""
    x, y = _unique_edges(x, y)
    starts = np.flatnonzero(np.r_[True, x[1:] != x[:-1]]) if len(x) else np.zeros(0, int)
    low = np.minimum.reduceat(y, starts) if len(x) else y
    m = np.minimum(x[starts], low)
    return x, y, np.repeat(m, np.diff(np.r_[starts, len(x)]))


def _large_star(t: pa.Table) -> pa.Table:
    """Every larger neighbour of x is linked to the smallest node of x's neighbourhood."""
    x, y, m = _neighbour_min(t.column("u").to_numpy(), t.column("v").to_numpy())
    out = y > x
    return pa.table({"u": y[out], "v": m[out], "changed": (m[out] != x[out]).astype(np.int64)},
                    schema=_EDGE)


def _small_star(t: pa.Table) -> pa.Table:
    """Every smaller neighbour of x, and x, are linked to the smallest of them."""
    u, v = t.column("u").to_numpy(), t.column("v").to_numpy()
    x, y = np.maximum(u, v), np.minimum(u, v)  # x: the larger end
    keep = x != y
    x, y, m = _neighbour_min(x[keep], y[keep])
    own = np.r_[True, x[1:] != x[:-1]] if len(x) else np.zeros(0, bool)
    moved = y != m
    nodes = np.concatenate([y[moved], x[own]])
    labels = np.concatenate([m[moved], m[own]])
    changed = np.concatenate([np.ones(int(moved.sum()), np.int64),
                              np.zeros(int(own.sum()), np.int64)])
    return pa.table({"u": nodes, "v": labels, "changed": changed}, schema=_EDGE)


def _local_labels(t: pa.Table) -> pa.Table:
    """Components of the remaining edges in one task: node -> smallest node id."""
    u, v = t.column("u").to_numpy(), t.column("v").to_numpy()
    nodes, inv = np.unique(np.concatenate([u, v]), return_inverse=True)
    labels = connected_labels(len(nodes), inv[: len(u)], inv[len(u):])
    smallest = np.full(labels.max() + 1 if len(labels) else 0, len(nodes))
    np.minimum.at(smallest, labels, np.arange(len(nodes)))  # nodes are sorted
    return pa.table({"node": nodes, "label": nodes[smallest[labels]]}, schema=LABELS)


def _star_labels(t: pa.Table) -> pa.Table:
    """Leaves and (once, in their own partition) the roots of converged stars."""
    u, v = t.column("u").to_numpy(), t.column("v").to_numpy()
    node, label = _unique_edges(np.maximum(u, v), np.minimum(u, v))
    roots = np.unique(label)
    return pa.table({"node": np.concatenate([node, roots]),
                     "label": np.concatenate([label, roots])}, schema=LABELS)


def component_labels(edges: ray.data.Dataset, local_edges: int = LOCAL_EDGES
                     ) -> ray.data.Dataset:
    """``node -> label`` (the smallest node id of its component) for every node of an
    undirected int64 edge dataset with columns ``u``, ``v``."""
    edges = edges.select_columns(["u", "v"]).materialize()
    for _ in range(MAX_ROUNDS):
        n = edges.count()
        if n == 0:
            return ray.data.from_arrow(LABELS.empty_table())
        if n <= local_edges:
            return edges.repartition(1).map_batches(
                _local_labels, batch_format="pyarrow", batch_size=None).materialize()
        parts = partitions_for(2 * n)
        large = by_key(edges.map_batches(_both_ways, batch_format="pyarrow"), "u",
                       _large_star, parts).materialize()
        # large-star edges come out oriented (u > v): small-star groups by u
        small = by_key(large.select_columns(["u", "v"]), "u", _small_star,
                       parts).materialize()
        if not large.sum("changed") and not small.sum("changed"):
            return by_key(small.select_columns(["u", "v"]), "v", _star_labels,
                          parts).materialize()
        edges = small.select_columns(["u", "v"]).materialize()
    raise RuntimeError(f"connected components did not converge in {MAX_ROUNDS} rounds")
