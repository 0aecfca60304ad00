"""LeNet-5's learning rate on the embedded `digits` dataset: a 4-point grid.

The recipe (configs/lenet5.py) uses 0.002 and notes that 0.01 oscillates while
0.002-0.003 reaches 97-98%; this grid spans 0.0003-0.01 in half-decades to show that
curve. 10 epochs instead of 20 (the step schedule scales with them) keep the four
trials at a few minutes on 2 CPU cores. The trials are ranked on 150 training images
held out as minival (`data.minival_size`), never on the test split they report.

    cnn-jax sweep experiments/sweeps/digits_lr.py --workdir runs/digits_lr [--workers 2]
"""

BASE = "configs/lenet5.py"
OVERRIDES = {"num_epochs": 10, "schedule.boundaries_epochs": (5, 8), "progress_bar": False, "data.minival_size": 150}
SPACE = {"optimizer.lr": [0.0003, 0.001, 0.003, 0.01]}
OBJECTIVE = "top1"
TRIALS = 4
SAMPLER = "grid"
PRUNER = None
