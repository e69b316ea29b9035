"""The `keras-svp` console script."""

import sys


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("bench",):
        print("usage: keras-svp bench [options]   (keras-svp bench --help)")
        return 2
    from keras_svp.benchmarks.__main__ import main as bench

    return bench(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
