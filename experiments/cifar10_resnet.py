"""The ResNet paper's CIFAR-10 study (He et al. 2016, Sec. 4.2, Table 6): ResNet-20/32/44/56/110
with the paper's recipe (configs/resnet_cifar.py: 64k iterations, batch 128, lr 0.1 /10 at 32k
and 48k, 4-px pad + crop + flip).

Published: Table 6 test accuracy (100 - error) on the 10k CIFAR-10 test images, one model,
one 32x32 view, which is what our evaluation does. ResNet-110's 6.43% error is the best of
5 runs (mean 6.61 +- 0.16%); the others are single runs. A best-of-5 number is not set
against our mean (the table says "paper: best of 5 runs").

Needs `cifar10` in TFDS's data_dir (it downloads; cannot run offline).

    cnn-jax reproduce experiments/cifar10_resnet.py --workdir runs/cifar10_resnet
"""

_SOURCE = "He et al. 2016, Table 6: CIFAR-10 test error {err}% (10k test images, single view)"

_PROTOCOL = {"protocol": "center", "input_size": 32, "split": "test", "dataset": "cifar10", "models": 1}

ENTRIES = [
    {
        "name": f"resnet{depth}",
        "config": f"configs/resnet_cifar.py:depth={depth}",
        "published": {"top1": round(100.0 - err, 2), "source": _SOURCE.format(err=err) + note, **_PROTOCOL, **chosen},
    }
    for depth, err, note, chosen in [
        (20, 8.75, "", {}),
        (32, 7.51, "", {}),
        (44, 7.17, "", {}),
        (56, 6.97, "", {}),
        (110, 6.43, "; best of 5 runs, mean 6.61 +- 0.16", {"selection": "best of 5 runs"}),
    ]
]
