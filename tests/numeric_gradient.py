"""Central-difference gradients of NumPy float64 reference functions."""

import numpy as np


def numeric_grad(fn, params, eps=1e-6):
    """The gradient of the scalar `fn(params)` for each array in `params`."""
    grads = []
    for i, p in enumerate(params):
        g = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            plus = [q.copy() for q in params]
            minus = [q.copy() for q in params]
            plus[i][idx] += eps
            minus[i][idx] -= eps
            g[idx] = (fn(plus) - fn(minus)) / (2 * eps)
        grads.append(g)
    return grads
