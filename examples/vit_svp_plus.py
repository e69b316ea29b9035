"""A Vision Transformer trained block-wise with SVP+ (or end to end with BP).

Transformer blocks are grouped into SVPBlock units of `--blocks-per-unit`
blocks; each unit learns from its own local loss on its class token (or
mean token) while its inside trains by backpropagation.

Usage:

    KERAS_BACKEND=jax python examples/vit_svp_plus.py --dataset cifar10
    python examples/vit_svp_plus.py --blocks-per-unit 2 --reduction mean
    python examples/vit_svp_plus.py --quick   # a few seconds: a smoke test

Prints test accuracy, training time and the process's peak resident memory.
"""

from example_utils import head_start
from example_utils import parser
from example_utils import run


def build_model(args, input_shape, num_classes):
    from keras_svp import applications

    quick = args.quick
    return applications.vit(
        num_classes=num_classes,
        input_shape=tuple(input_shape),
        # 8x8 digits: 2x2 patches give 16 tokens.
        patch_size=2 if input_shape[0] <= 8 else args.patch_size,
        dim=16 if quick else args.dim,
        depth=2 if quick else args.depth,
        num_heads=2 if quick else args.num_heads,
        mlp_ratio=args.mlp_ratio,
        blocks_per_unit=1 if quick else args.blocks_per_unit,
        reduction=args.reduction,
        mode=args.mode,
        seed=args.seed,
        head_from_projection=head_start(args),
    )


def main(argv=None):
    # --quick: enough steps of the tiny model to beat chance clearly.
    quick = {"epochs": 10, "batch_size": 32, "learning_rate": 1e-2}
    p = parser(__doc__.splitlines()[0], "cifar10", 50, 1e-3, quick)
    p.add_argument("--patch-size", type=int, default=4)
    p.add_argument("--dim", type=int, default=192, help="token size")
    p.add_argument("--depth", type=int, default=6, help="transformer blocks")
    p.add_argument("--num-heads", type=int, default=3)
    p.add_argument("--mlp-ratio", type=float, default=2.0)
    p.add_argument("--blocks-per-unit", type=int, default=1)
    p.add_argument("--reduction", default="cls", choices=("cls", "mean"))
    return run(p.parse_args(argv), build_model)


if __name__ == "__main__":
    main()
