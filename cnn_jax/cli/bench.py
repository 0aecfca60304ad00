"""`cnn-jax bench MODEL`: steady-state training and inference images/s, compile time and MFU
(cnn_jax.train.bench); the last line is JSON."""

import argparse
import json

from cnn_jax.cli.common import whole_number
from cnn_jax.config_schema import MAX_IMAGE
from cnn_jax.layers import impls
from cnn_jax.train.bench import DTYPES, bench


def run(argv: list) -> int:
    p = argparse.ArgumentParser(prog="cnn-jax bench")
    p.add_argument("model")
    p.add_argument("--batch-size", type=whole_number(1), default=16)
    p.add_argument(
        "--dtype",
        default="auto",
        choices=("auto",) + tuple(sorted(DTYPES)),
        help="auto: bfloat16 on GPU/TPU, float32 on CPU (as training's default)",
    )
    p.add_argument("--input-size", type=whole_number(0, MAX_IMAGE), default=0, help="0: the model's paper input")
    p.add_argument("--steps", type=whole_number(1), default=5)
    p.add_argument("--warmup", type=whole_number(0), default=2)
    p.add_argument(
        "--num-classes",
        type=whole_number(0),
        default=0,
        help="0: the model's own class count (the registry's; 10 for LeNet-5's RBF head)",
    )
    p.add_argument("--num-devices", type=whole_number(0), default=0)
    p.add_argument("--loop", action="store_true", help="also time the training loop's machinery")
    impls.add_flags(p)
    a = p.parse_args(argv)
    r = bench(
        a.model,
        a.batch_size,
        a.dtype,
        a.input_size,
        a.steps,
        a.warmup,
        a.num_classes,
        a.num_devices,
        a.loop,
        {key: getattr(a, key) for key in impls.KEYS},
    )
    print(
        f"{r['model']} batch {r['batch_size']} {r['dtype']} ({r['conv_impl']} convs, {r['bn_impl']} BN, "
        f"{r['pool_impl']} pooling, {r['dense_impl']} dense) at {r['input_size']}px on {r['device']} x{r['devices']}: "
        f"train {r['train_img_per_s']:.2f} img/s (fastest step {r['train_img_per_s_fastest']:.2f}), "
        f"inference {r['infer_img_per_s']:.2f} img/s, "
        f"compile {r['compile_s']:.1f} s, {r['step_gflop']:.1f} GFLOP/step, MFU {100 * r['mfu']:.1f}% "
        f"of a {r['peak_gflop_per_s']:.0f} GFLOP/s matmul peak"
    )
    print(json.dumps(r))
    return 0
