"""The main job (`make run`): three families trained on the embedded `digits` dataset.

LeNet-5 with its paper's architecture, the ResNet paper's CIFAR ResNet-20 and a
MobileNet v1 at half width, each with its config's `cpu` recipe. There are no
published numbers for `digits`; LeNet-5's MNIST result is quoted for scale and gets no Δ
(the table says "other dataset"). `--seeds N` trains each entry over N seeds.
"""

ENTRIES = [
    {
        "name": "lenet5",
        "config": "configs/lenet5.py",
        "published": {
            "top1": 99.05,
            "protocol": "center",
            "input_size": 32,
            "split": "test",
            "dataset": "mnist",
            "models": 1,
            "source": "LeNet-5 on MNIST (0.95% error), LeCun et al. 1998",
        },
    },
    {"name": "resnet20", "config": "configs/resnet_cifar.py:depth=20,cpu"},
    {"name": "mobilenet_v1_0.5", "config": "configs/mobilenet_v1.py:alpha=0.5,cpu"},
]
