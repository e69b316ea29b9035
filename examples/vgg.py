"""VGG-11 of SVPConv2D units (BatchNorm, max pooling) trained with SVP or BP.

On CIFAR (and Imagenette) the training images are randomly flipped and
shifted by Keras' augmentation layers, as in the paper's setting.

Usage:

    KERAS_BACKEND=jax python examples/vgg.py --dataset cifar10 --epochs 30
    python examples/vgg.py --dataset fashion_mnist --width-multiplier 0.25
    python examples/vgg.py --dataset fashion_mnist --units stage  # 5 units
    python examples/vgg.py --dataset fashion_mnist --config small --probes
    python examples/vgg.py --dataset fashion_mnist --config small --head-convolutions 1
    python examples/vgg.py --quick   # a few seconds: a smoke test

Prints test accuracy, training time and the process's peak resident memory.
"""

from example_utils import head_start
from example_utils import parser
from example_utils import run


def build_model(args, input_shape, num_classes):
    from keras_svp import applications
    from keras_svp.benchmarks.models import SMALL_CNN

    # "small" is the benchmarks' 3-unit CNN (keras_svp.benchmarks.models).
    config = SMALL_CNN if args.config == "small" else applications.VGG11
    return applications.vgg(
        config,
        name="cnn" if args.config == "small" else "vgg11",
        num_classes=num_classes,
        input_shape=tuple(input_shape),
        width_multiplier=0.0625 if args.quick else args.width_multiplier,
        mode=args.mode,
        seed=args.seed,
        units=args.units,
        head_convolutions=args.head_convolutions,
        head_from_projection=head_start(args),
    )


def main(argv=None):
    p = parser(__doc__.splitlines()[0], "cifar10", 30, 1e-3)
    p.add_argument(
        "--config",
        choices=("vgg11", "small"),
        default="vgg11",
        help="VGG-11 (8 convolutions), or the benchmarks' small CNN "
        "(convolutions of 32, 64 and 128 filters, each followed by pooling)",
    )
    p.add_argument(
        "--width-multiplier",
        type=float,
        default=1.0,
        help="scales every filter count (1.0: 64 ... 512 filters)",
    )
    p.add_argument(
        "--units",
        choices=("convolution", "stage"),
        default="convolution",
        help="one SVP unit per convolution (the paper), or per stage of "
        "convolutions between poolings",
    )
    p.add_argument(
        "--head-convolutions",
        type=int,
        default=0,
        help="how many of the last convolutions join the output head, trained "
        "with it by the model's loss instead of as SVP units",
    )
    return run(p.parse_args(argv), build_model)


if __name__ == "__main__":
    main()
