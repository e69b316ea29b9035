"""The paper's MLP (3 x 1024 SVPDense units) trained with SVP or BP.

Usage:

    KERAS_BACKEND=jax python examples/mlp.py --dataset fashion_mnist --epochs 5
    KERAS_BACKEND=torch python examples/mlp.py --dataset digits --mode bp
    python examples/mlp.py --dataset fashion_mnist --head-layers 1
    python examples/mlp.py --quick   # a few seconds: a smoke test

Prints test accuracy, training time and the process's peak resident memory.
"""

from example_utils import head_start
from example_utils import parser
from example_utils import run


def build_model(args, input_shape, num_classes):
    from keras_svp import applications

    return applications.mlp(
        num_classes=num_classes,
        depth=args.depth,
        width=64 if args.quick else args.width,
        mode=args.mode,
        input_shape=input_shape,
        seed=args.seed,
        head_from_projection=head_start(args),
        head_layers=args.head_layers,
    )


def main(argv=None):
    p = parser(__doc__.splitlines()[0], "fashion_mnist", 5, 1e-3)
    p.add_argument("--depth", type=int, default=3, help="hidden layers")
    p.add_argument("--width", type=int, default=1024, help="units per layer")
    p.add_argument(
        "--head-layers",
        type=int,
        default=0,
        help="how many of the last hidden layers join the output head, trained "
        "with it by the model's loss instead of as SVP units",
    )
    return run(p.parse_args(argv), build_model)


if __name__ == "__main__":
    main()
