"""Star-contraction components on Ray Data against scipy on random graphs and a path
(the worst case for label propagation)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


def _reference(u: np.ndarray, v: np.ndarray) -> dict[int, int]:
    nodes, inv = np.unique(np.r_[u, v], return_inverse=True)
    n = len(nodes)
    graph = coo_matrix((np.ones(len(u)), (inv[: len(u)], inv[len(u):])), shape=(n, n))
    labels = connected_components(graph, directed=False)[1]
    smallest = {}
    for node, label in zip(nodes.tolist(), labels.tolist()):
        smallest[label] = min(smallest.get(label, node), node)
    return {node: smallest[label] for node, label in zip(nodes.tolist(), labels.tolist())}


def test_star_contraction_equals_scipy(ray_session):
    import ray

    from curation.runner.fits.components import component_labels
    from curation.runner.fits.shuffle import task_shuffles

    rng = np.random.default_rng(8)
    u = rng.integers(0, 300, 220) * 7919 % 100_003  # sparse ids, many components
    v = rng.integers(0, 300, 220) * 7919 % 100_003
    path = np.arange(1000, 1016)
    u, v = np.r_[u, path[:-1][::-1]], np.r_[v, path[1:][::-1]]  # a 16-node chain
    keep = u != v
    u, v = u[keep], v[keep]
    with task_shuffles():
        edges = ray.data.from_arrow(pa.table({"u": u, "v": v}))
        got = component_labels(edges, local_edges=0).to_pandas()  # all rounds on Ray
    assert dict(zip(got["node"].tolist(), got["label"].tolist())) == _reference(u, v)
