"""The implementation switches as one set: conv_impl, bn_impl, pool_impl and dense_impl are
resolved for a platform, traced with, and wrapped around a model's apply function together, so
that a new switch is one entry here rather than one more line in every place that builds a step."""

import contextlib

from cnn_jax.layers import batchnorm, conv, dense, pooling

# Each switch with its resolve function (conv_impl's also refuses onednn where it cannot run).
_SWITCHES = (
    (conv.SWITCH, conv.resolve),
    (batchnorm.SWITCH, batchnorm.resolve),
    (pooling.SWITCH, pooling.resolve),
    (dense.SWITCH, dense.resolve),
)
KEYS = tuple(switch.key for switch, _ in _SWITCHES)
CHOICES = {switch.key: switch.choices for switch, _ in _SWITCHES}  # besides `auto`
# What each choice means, for command-line help.
_HELP = {
    "conv_impl": "xla: XLA's convolutions; gemm: 1x1 convolutions as matmuls; onednn: every "
    "convolution through oneDNN (CPU); auto: onednn on CPU where it builds, else "
    "gemm; xla elsewhere",
    "bn_impl": "flax: flax's BatchNorm; sums: from per-channel sums; auto: sums on CPU only",
    "pool_impl": "xla: JAX's max-pool gradient; offsets: by the window offsets saved in the "
    "forward pass; auto: offsets on CPU only",
    "dense_impl": "xla: JAX's transpose of the dense layers' product; explicit: their weight "
    "gradient as x^T g in the kernel's layout (cnn_jax.cpu.gemm); auto: explicit on "
    "CPU only",
}


def resolve(choices, platform: str) -> dict:
    """{key: choice} for every switch: `auto` as this platform's choice, a missing key as the
    switch's default (XLA's or flax's own form). `choices` is a dict or a ConfigDict."""
    return {s.key: resolve_one(choices.get(s.key, s.choices[0]), platform) for s, resolve_one in _SWITCHES}


def add_flags(parser):
    """--conv-impl, --bn-impl, --pool-impl, --dense-impl on an argparse parser, each `auto` by default."""
    for switch, _ in _SWITCHES:
        parser.add_argument(
            "--" + switch.key.replace("_", "-"),
            default="auto",
            choices=("auto",) + switch.choices,
            help=_HELP[switch.key],
        )


def from_flags(args, platform: str) -> dict:
    """The parsed flags of add_flags, resolved for `platform`."""
    return resolve(vars(args), platform)


@contextlib.contextmanager
def use(choices: dict):
    """Trace inside this block with each switch set as `choices` says (absent keys unchanged)."""
    with contextlib.ExitStack() as stack:
        for switch, _ in _SWITCHES:
            if switch.key in choices:
                stack.enter_context(switch.use(choices[switch.key]))
        yield


def wrap(fn, choices):
    """`fn` (a TrainState's apply_fn) tracing with the switches set as `choices` says."""
    for switch, _ in _SWITCHES:
        fn = switch.wrap(fn, choices.get(switch.key, switch.choices[0]))
    return fn
