"""Quality: after a short CLI pretraining on phantoms, each method's kNN monitor beats a
random-init encoder's, read by the same monitor on the same images.

Phantoms carry the class in a shape (disc / ring / none) under a strong nuisance (grey level,
gradient, speckle) that the augmentations teach the encoder to ignore. The monitor reads every
encoder the same way (eval mode after re-estimating BN statistics on the bank, "precise BN"):
with the EMA running statistics, a few-step-old network was read with stale statistics and a
random one with the placeholders 0 / 1, which is how the trained encoders used to lose.

Short-run settings (a few dozen steps on ~64 images, not the thesis' 100 epochs): Adam lr 3e-4
(the thesis' 0.014 is for 100 epochs of batch 64), batch 16, the ``edges`` augmentation (crops
of at least half the image keep the shape that carries the class), 32 px views, and per-method
options that let a few dozen steps matter: a 64-key MoCo queue (16,384 random keys would never
be replaced), a faster momentum encoder (0.99, MoCo v1 §4.1 ablation) and temperature 0.2
(MoCo v2 §2); SimCLR and BYOL run with their defaults (BYOL: the paper's 4096-wide heads and
target momentum 0.99 -> 1). Measured on these phantoms: MoCo with its defaults
(0.07, momentum 0.999) stayed at kNN 0.66-0.73 in 24 steps; SimCLR keeps 0.07, as 0.2 read
0.70-0.71 in the same short run.

The learning rate: at lr 1e-3 (what this test used until session 5) one Adam step halves the
loss on the batch it was taken on (SimCLR 4.4 -> 2.2 on a fixed batch) and the training loss on
fresh views rises after the first epoch (SimCLR 3.6 -> 4.3, MoCo 2.9 -> 4.0): each step fits
its own 16 images and the encoder drifts. Read on 300 queries, lr 1e-3 left MoCo below random
init and SimCLR on both sides of it (second-half means, seeds 0-2: MoCo 0.74 / 0.76 / 0.74,
SimCLR 0.75 / 0.78 / 0.80; random init 0.77-0.78); its earlier SimCLR and MoCo passes were
within the noise of 90 queries (seed 1 of SimCLR read 0.70 < 0.73 there; BYOL, xfailed then,
0.71). At lr 3e-4 (seeds 0, 1, 2, then seed 0 with one thread instead of two, which changes
the order of floating-point sums and so the run): SimCLR 0.786 / 0.793 / 0.816 / 0.811 and
MoCo 0.784 / 0.788 / 0.797 / 0.800 against random init 0.773 / 0.780 / 0.773 (mean 0.775).
The gains are small (3 to 12 of 300 queries): a short CPU run shows that the training moves
the encoder the right way, not by how much pretraining helps, which is the benchmark's
question. BYOL: below.

Why not the demo's ultrasound phantoms (US1): there the class (benign / malignant) lies in
lesion shape and posterior signs a few pixels wide; at 32 px a random encoder reads chance
(kNN 0.46-0.57 on 79 queries) and so does SimCLR after 70 steps. That comparison needs the
benchmark's longer runs, not a unit test.
"""

from __future__ import annotations

import pytest
import torch

from dbfactory import phantom_db, save_db
from medssl.artifacts import read_csv
from medssl.cli.main import main
from medssl.data.pool import read_images
from medssl.engine.monitor import HealthMonitor
from medssl.models.encoder import build_encoder
from medssl.ssl import method_names

SIZE, K = 32, 20
SHORT_RUN = [
    "batch_size=16",
    "optimizer.lr=0.0003",
    "augmentation=edges",
    f"augmentation_options.size={SIZE}",
    f"health.knn_k={K}",
    "health.every=4",  # 4 steps an epoch: a read after every epoch
    "trainer.progress_bar=false",
]
OPTIONS = {
    "moco": [
        "method_options.queue_size=64",
        "method_options.momentum=0.99",
        "method_options.temperature=0.2",
        "method_options.batch_norm=false",
    ],
    "byol": ["method_options.momentum_end=1.0"],  # BYOL §3.2's cosine target, as measured
}
# Steps are what the run costs; MoCo needs a few more to fill its queue with trained keys.
# Only the methods measured here run in this slow test; any other registered method is left out.
EPOCHS = {"simclr": 6, "moco": 8, "byol": 8}
QUALITY_METHODS = [name for name in method_names() if name in EPOCHS]
# BYOL (no negatives; its target starts as the random encoder) failed this test through
# sessions 2-5 with 256-wide projector and predictor (chosen to save time) and a faster target
# (0.9 -> 0.99). Session 5, lr 3e-4 and 300 queries (second-half means; random init 0.775):
#   256-wide heads, target 0.9 -> 0.99: 0.787 / 0.793 / 0.779 (seeds 0-2), 0.755 (seed 0, one
#   thread); lr 1e-4 0.783 / 0.769 / 0.783; target 0.99 -> 1 0.765 / 0.787 / 0.785; 12 epochs
#   0.778 / 0.779: ties with random init.
#   4096-wide heads (BYOL §3.3), target 0.9 -> 0.99: 0.800 / 0.793 / 0.798, 0.806 (one thread);
#   4096-wide heads, target 0.99 -> 1 (the defaults, used here): 0.807 / 0.798 / 0.817,
#   0.815 (one thread);
#   4096-wide heads at lr 1e-3: 0.738 / 0.769 / 0.719.
# The paper's head width and a learning rate for batch 16 together are what a short run needs.
# Sessions 2-4 (lr 1e-3, 90 queries, random
# 0.69-0.73; the test ran 256-wide heads) tried faster and slower targets (0.61-0.73), lr 3e-3
# (0.55-0.76; 0.42-0.64 over 64 steps, no collapse), a SimSiam-like target (0.73), batch 32
# (0.67), phantoms without grey-level / gradient cues (0.76, random 0.80-0.88), the thesis
# augmentation (0.70-0.83) and a 10x predictor learning rate (0.66 / 0.73).


@pytest.fixture(scope="module")
def db():
    # 64 pretraining train images (4 steps an epoch); the health read's 480 labelled images
    # (finetuning train and val, 160 per class): an SE of about 0.02 on a balanced accuracy
    return phantom_db(n_pre=72, n_pre_val=8, n_ft=600, seed=1)


@pytest.fixture(scope="module")
def db_path(db, tmp_path_factory):
    return save_db(db, tmp_path_factory.mktemp("db") / "phantoms")


def test_monitor_has_no_side_effect(db):
    _, images, labels, groups = read_images(db)
    x = torch.from_numpy(images[:18])
    monitor = HealthMonitor(x, labels[:18], groups[:18], k=K, size=SIZE, probe_folds=2)
    torch.manual_seed(0)
    enc = build_encoder().train()
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    first, _ = monitor(enc)
    assert enc.training
    for k, v in enc.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert monitor(enc)[0] == first  # statistics re-estimated from scratch: the same reading twice


@pytest.mark.slow
@pytest.mark.parametrize("name", QUALITY_METHODS)
def test_knn_beats_random_init(db_path, tmp_path, capsys, name):
    out = tmp_path / name
    argv = ["pretrain", "--method", name, "--database", db_path, "--out", str(out)]
    argv += ["--preset", "thesis"]  # the settings measured above: Adam, no schedule
    argv += ["--epochs", str(EPOCHS[name]), "--device", "cpu"]
    for s in SHORT_RUN + OPTIONS.get(name, []):
        argv += ["--set", s]
    assert main(argv) == 0, capsys.readouterr().err
    gains = [float(r["knn_gain"]) for r in read_csv(out / "metrics.csv")]
    # The mean over the second half of the run's reads, not its best read (no selection), of
    # the paired gain over the run's own random-init encoder on the same images.
    trained = gains[len(gains) // 2 :]
    assert sum(trained) / len(trained) > 0, gains
