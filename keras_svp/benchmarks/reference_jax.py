"""A hand-written JAX SVP step for the MLP: the floor Keras' step is held to.

The same computation as `SVPSequential([SVPDense(width)] * depth +
[Dense(classes)])` in `mode="svp"` with Adam: Dense -> LayerNorm -> GELU
units, projection dropout (none by default, as the units), cross-entropy
plus alignment per unit, one `value_and_grad` per unit, then one Adam
update, jitted with the state donated, as Keras does. Written with `jax`
and `jax.numpy` only.
"""

import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np


def _layer_norm(h, gamma, beta, epsilon=1e-3):
    mean = jnp.mean(h, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(h - mean), axis=-1, keepdims=True)
    return (h - mean) * jax.lax.rsqrt(var + epsilon) * gamma + beta


def _unit_rows(a):
    return a * jax.lax.rsqrt(jnp.maximum(jnp.sum(a * a, -1, keepdims=True), 1e-24))


def _alignment(a, b):
    # mean_ij (S(a) - S(b))_ij^2 from one feature-by-feature product, as
    # `losses.alignment_loss` computes it for projections.
    a, b = _unit_rows(a), _unit_rows(b)
    products = jnp.concatenate([a, b], 1).T @ jnp.concatenate([a, -b], 1)
    return jnp.maximum(jnp.sum(products * products.T), 0.0) / a.shape[0] ** 2


def _cross_entropy(logits, y):
    logp = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))


# The units' activations this step can stand in for, as Keras computes them.
ACTIVATIONS = {
    "gelu": lambda h: jax.nn.gelu(h, approximate=False),
    "relu": jax.nn.relu,
    "silu": jax.nn.silu,
    "tanh": jnp.tanh,
}


def _plus(params, zero):
    return jax.tree.map(lambda p: p + zero, params)


def init(depth, width, input_dim, num_classes=10, seed=0):
    """Parameters, fixed projections and Adam state of the reference MLP."""
    rng = np.random.default_rng(seed)
    units, projections = [], []
    fan_in = input_dim
    for _ in range(depth):
        limit = np.sqrt(6 / (fan_in + width))
        units.append(
            {
                "kernel": rng.uniform(-limit, limit, (fan_in, width)),
                "bias": np.zeros(width),
                "gamma": np.ones(width),
                "beta": np.zeros(width),
            }
        )
        projections.append(rng.standard_normal((width, num_classes)) / np.sqrt(width))
        fan_in = width
    limit = np.sqrt(6 / (width + num_classes))
    head = {
        "kernel": rng.uniform(-limit, limit, (width, num_classes)),
        "bias": np.zeros(num_classes),
    }
    params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), (units, head))
    projections = [jnp.asarray(p, jnp.float32) for p in projections]
    state = {
        "params": params,
        # Two separate zero trees: the state is donated buffer by buffer.
        "m": jax.tree.map(jnp.zeros_like, params),
        "v": jax.tree.map(jnp.zeros_like, params),
        "step": jnp.zeros((), jnp.int32),
    }
    return state, projections


def make_step(
    projections,
    dropout=0.0,
    alignment_weight=1.0,
    learning_rate=1e-3,
    activation="gelu",
):
    """The jitted SVP training step `(state, x, y, key) -> (state, loss)`.

    The defaults are the units' own: no projection dropout, exact GELU
    (`activation` is a key of `ACTIVATIONS`).
    """
    act = ACTIVATIONS[activation]

    def unit_loss(unit, x, y, projection, previous, key):
        h = act(
            _layer_norm(x @ unit["kernel"] + unit["bias"], unit["gamma"], unit["beta"])
        )
        keep = jax.random.bernoulli(key, 1 - dropout, projection.shape)
        z = h @ jnp.where(keep, projection / (1 - dropout), 0.0)
        loss = _cross_entropy(z, y)
        if previous is not None:
            loss = loss + alignment_weight * _alignment(z, previous)
        return loss, (h, z)

    def head_loss(head, h, y):
        return _cross_entropy(h @ head["kernel"] + head["bias"], y)

    def step(state, x, y, key):
        units, head = state["params"]
        keys = jax.random.split(key, len(units))
        grads, total, h, previous, zero = [], 0.0, x, None, 0.0
        for unit, projection, unit_key in zip(units, projections, keys):
            # The trainers' `computed_after`, in jax.numpy: an exact zero
            # from the previous unit's gradients makes this unit's input and
            # weights wait for them.
            unit = _plus(unit, zero)
            (loss, (h, z)), grad = jax.value_and_grad(unit_loss, has_aux=True)(
                unit, jax.lax.stop_gradient(h), y, projection, previous, unit_key
            )
            (h, z), grad = jax.lax.optimization_barrier(((h, z), grad))
            gradient_sum = sum(jnp.sum(g) for g in jax.tree.leaves(grad))
            zero = jnp.isnan(gradient_sum).astype(h.dtype) * 0.0
            h, z = h + zero, z + zero
            grads.append(grad)
            previous, total = jax.lax.stop_gradient(z), total + loss
        head = _plus(head, zero)
        loss, head_grad = jax.value_and_grad(head_loss)(head, h, y)
        grads = (grads, head_grad)
        # Adam, as keras.optimizers.Adam with its defaults.
        t = state["step"] + 1
        b1, b2, eps = 0.9, 0.999, 1e-7
        m = jax.tree.map(lambda m, g: m + (g - m) * (1 - b1), state["m"], grads)
        v = jax.tree.map(lambda v, g: v + (g * g - v) * (1 - b2), state["v"], grads)
        lr = learning_rate * jnp.sqrt(1 - b2**t) / (1 - b1**t)
        params = jax.tree.map(
            lambda p, m, v: p - lr * m / (jnp.sqrt(v) + eps), state["params"], m, v
        )
        return {"params": params, "m": m, "v": v, "step": t}, total + loss

    return jax.jit(step, donate_argnums=0)


def reference_step_time(depth, width, x, y, warmup=3, repeats=10, **step_options):
    """Median milliseconds of the hand-written step on batch `(x, y)`.

    `step_options` go to `make_step` (e.g. `activation="relu"`).
    """
    state, projections = init(depth, width, x.shape[1])
    step = make_step(projections, **step_options)
    x, y = jnp.asarray(x), jnp.asarray(y)
    key = jax.random.PRNGKey(0)
    for _ in range(warmup):
        state, loss = step(state, x, y, key)
    loss.block_until_ready()
    times = []
    for _ in range(repeats):
        key, subkey = jax.random.split(key)
        start = time.perf_counter()
        state, loss = step(state, x, y, subkey)
        loss.block_until_ready()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def reference_step_memory(depth, width, x, y):
    """Temp and argument MiB of the compiled hand-written step."""
    state, projections = init(depth, width, x.shape[1])
    step = make_step(projections)
    analysis = (
        step.lower(state, x, y, jax.random.PRNGKey(0)).compile().memory_analysis()
    )
    return {
        "temp_mib": analysis.temp_size_in_bytes / 2**20,
        "argument_mib": analysis.argument_size_in_bytes / 2**20,
    }
