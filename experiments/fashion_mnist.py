"""Fashion-MNIST (Xiao et al. 2017): our architectures against the published CNN rows of the
dataset's benchmark table (the dataset authors' README, "Benchmark" section), test top-1 on
the 10,000 test images, one model, one centre view.

Every entry trains on all 60,000 training images with its config's recipe and reports the
final checkpoint (no choice is made by looking at the test split), over three seeds. The
published rows are single numbers from other people's code; each entry says which row it is
set against and how its recipe differs. Read offline: `apt-get install dataset-fashion-mnist`
(or the four IDX files in a folder named by --config.data.idx_dir).

    cnn-jax reproduce experiments/fashion_mnist.py --workdir runs/fashion_mnist
"""

BENCHMARK = "Fashion-MNIST benchmark table (zalandoresearch/fashion-mnist README)"

ENTRIES = [
    {
        "name": "lenet5",
        "config": "configs/lenet5.py:fashion",
        "seeds": 3,
        "published": {
            "top1": 91.6,
            "protocol": "center",
            "source": f"{BENCHMARK}: 2 conv + pooling "
            "(TensorFlow tutorial), no preprocessing; LeNet-5 here: 2 conv + 2 subsampling, RBF head, "
            "images centred in 32x32, no augmentation, 20 epochs",
        },
    },
    {
        "name": "resnet20",
        "config": "configs/resnet_cifar.py:depth=20,fashion,epochs=40",
        "seeds": 3,
        "published": {
            "top1": 94.9,
            "protocol": "center",
            "source": f"{BENCHMARK}: ResNet18 (11M parameters), "
            "normalisation, flips, translation, rotation; ResNet-20 here: the CIFAR ResNet (0.27M), "
            "normalisation, flips, 4-pixel translation, no rotation, 40 epochs",
        },
    },
    {
        "name": "mobilenet_v1",
        "config": "configs/mobilenet_v1.py:fashion",
        "seeds": 3,
        "published": {
            "top1": 95.0,
            "protocol": "center",
            "source": f"{BENCHMARK}: MobileNet, horizontal "
            "flips; MobileNet v1 1.0 here: the ImageNet network on 32x32 resized images, "
            "normalisation, flips, 4-pixel translation, RMSProp, 30 epochs",
        },
    },
]
