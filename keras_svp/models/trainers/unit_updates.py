"""Each unit's optimizer update as soon as its gradients exist."""

import keras


def couples_variables(optimizer):
    """Whether `optimizer`'s update of one variable depends on the others.

    Loss scaling skips the whole step on one non-finite gradient, a global
    norm clip divides by the norm over every gradient, and the moving
    average and gradient accumulation act on all variables in each
    `apply`. Such an optimizer needs every unit's gradients in one `apply`.

    Args:
        optimizer: a Keras optimizer.

    Returns:
        A bool.
    """
    return (
        isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
        or bool(optimizer.global_clipnorm)
        or bool(optimizer.use_ema)
        or bool(optimizer.gradient_accumulation_steps)
    )


class UnitUpdates:
    """Applies each unit's gradients as they come, as one optimizer step.

    The spec's update: a unit's gradients are applied right after its own
    backward pass, so that they (and the optimizer's temporaries) are freed
    before the next unit runs. Every `apply` counts an iteration, so the
    count is taken back before each but the first: learning-rate schedules
    and bias corrections see the same step number in every unit, the step
    counts once, and the weights equal those of one `apply` of all units.
    With an optimizer that couples variables (`couples_variables`), or
    where the trainer asks for it, all gradients go through one `apply` in
    `finish`.

    Args:
        optimizer: the model's optimizer.
        trainable_variables: all the model's trainable variables, to build
            the optimizer on if it is not built (built on one unit's weights
            alone, it would not know the others).
        each_unit: False makes every update wait for `finish`.
    """

    def __init__(self, optimizer, trainable_variables, each_unit=True):
        if not optimizer.built:
            optimizer.build(trainable_variables)
        self.optimizer = optimizer
        self.each_unit = each_unit and not couples_variables(optimizer)
        self.applied = False
        self.gradients, self.variables = [], []

    def __call__(self, gradients, variables):
        """Applies (or keeps for `finish`) one unit's gradients.

        Returns:
            True if the update was applied now.
        """
        if not self.each_unit:
            self.gradients += list(gradients)
            self.variables += list(variables)
            return False
        if self.applied:
            # Back to this step's count, which `apply` advances again.
            self.optimizer.iterations.assign_sub(1)
        self.optimizer.apply(gradients, variables)
        self.applied = True
        return True

    def finish(self):
        """Applies the gradients kept back, if any, in one `apply`."""
        if self.variables:
            self.optimizer.apply(self.gradients, self.variables)
