"""The three recipes of ``docs/architecture.md`` ("Add a task", "Add a method", "Add a source"),
each followed inside a test: a toy registered here, unregistered afterwards, run through the
real loop and the contract checks (``tests/contracts.py``) without touching another module."""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from lightly.loss import NegativeCosineSimilarity
from lightly.models.modules import SimSiamPredictionHead
from sklearn.metrics import balanced_accuracy_score

from contracts import (
    check_collapse_guard,
    check_source_accepts_parent_folder,
    check_source_contract,
    check_step_contract,
    check_task_contract,
    check_validation_has_no_side_effects,
)
from medssl.artifacts import read_csv, read_json, write_bytes
from medssl.data.augment import to_float
from medssl.data.build import build_database, open_sources
from medssl.data.database import Database
from medssl.data.imaging import load_image_and_masks
from medssl.data.phantoms import write_source
from medssl.data.recipe import Recipe, Sizes
from medssl.data.records import CLASSES, Record
from medssl.data.sources import SOURCES, Source, register_source
from medssl.data.synth.files import save_image
from medssl.data.synth.ultrasound import phantom_size, render_ultrasound
from medssl.errors import DataError
from medssl.models.classifier import build_classifier
from medssl.models.encoder import FEATURE_DIM, build_encoder
from medssl.ssl import METHODS, SSLMethod, build_method, method_names
from medssl.tasks.classify import Classification
from medssl.tasks.finetune import final_summary, run_finetune
from medssl.tasks.pretrain import run_pretraining
from medssl.tasks.task import TASKS, FinetuneTask, task_names

TINY_RUN = [
    "trainer.epochs=1",
    "trainer.precision=32-true",
    "trainer.progress_bar=false",
    "batch_size=4",
]


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # small CPU convolutions run faster on one thread
    yield
    torch.set_num_threads(before)


# ----------------------------------------------------------------------------- add a task


class Lesion(FinetuneTask):
    """Is there a lesion (benign or malignant) or not: two-class cross-entropy on a
    ResNet-18, selected and summarised by balanced accuracy."""

    name = "lesion"
    monitor = "val_balanced_accuracy"
    epoch_metrics = ("loss", "balanced_accuracy")
    summary_metrics = ("balanced_accuracy",)

    def build(self, init, train):
        return Classification(build_classifier(init, n_classes=2))

    def tensors(self, split, device):
        x = to_float(torch.from_numpy(split.images).to(device))
        return {"x": x, "y": torch.from_numpy((split.labels > 0).astype(np.int64)).to(device)}

    def metrics(self, split, probs, loss, *, distances=True):
        ba = balanced_accuracy_score(split.labels > 0, probs.argmax(1) > 0)
        return {"loss": loss, "balanced_accuracy": float(ba)}

    def save_predictions(self, out, split_name, split, probs):
        buf = io.BytesIO()
        np.savez_compressed(buf, ids=np.array(split.ids), probs=probs.astype(np.float32))
        write_bytes(out / f"predictions_{split_name}.npz", buf.getvalue())


@pytest.fixture
def lesion_task():
    task_names()  # the package's own tasks register first, as in a real run
    TASKS.register("lesion")(Lesion)
    try:
        yield Lesion
    finally:
        TASKS.unregister("lesion")


def test_add_a_task(lesion_task, tiny_db, tmp_path, one_thread):
    check_task_contract("lesion", tiny_db)
    out = run_finetune(
        tiny_db, tmp_path / "run", task="lesion", overrides=TINY_RUN,
        device="cpu",
    )  # fmt: skip
    done = read_json(out / "done.json")
    assert done["task"] == "lesion" and done["monitor"] == "val_balanced_accuracy"
    rows = read_csv(out / "results.csv")
    assert {(r["split"], r["metric"]) for r in rows} == {
        (s, m) for s in ("train", "val", "test") for m in ("loss", "balanced_accuracy")
    }
    assert all(0 <= float(r["value"]) <= 1 for r in rows if r["metric"] == "balanced_accuracy")
    with np.load(out / "predictions_test.npz") as p:
        assert p["probs"].shape == (9, 2)
        assert np.allclose(p["probs"].sum(1), 1, atol=1e-5)
    assert "test balanced_accuracy" in final_summary(out)


# ----------------------------------------------------------------------------- add a method


@dataclass
class CosineSiameseConfig:
    hidden_dim: int = 64  # a small predictor: the toy only has to train


class CosineSiamese(SSLMethod):
    """A predictor on the encoder's features and lightly's negative cosine against the other
    view's stop-gradient features, symmetrised (SimSiam's eq. 4 without its projector)."""

    Config = CosineSiameseConfig

    def __init__(self, encoder, config):
        super().__init__(encoder, config)
        self.predictor = SimSiamPredictionHead(FEATURE_DIM, config.hidden_dim, FEATURE_DIM)
        self.criterion = NegativeCosineSimilarity()

    def compute_loss(self, views):
        x0, x1 = views  # (N, 1, H, W) each
        n = x0.shape[0]
        f = self.encoder(torch.cat([x0, x1]))  # (2N, 512)
        p = self.predictor(f)  # (2N, 512)
        loss = 0.5 * (self.criterion(p[:n], f[n:].detach()) + self.criterion(p[n:], f[:n].detach()))
        return loss, {}


@pytest.fixture
def cosine_siamese():
    method_names()  # the package's own methods register first, as in a real run
    METHODS.register("cosine_siamese")(CosineSiamese)
    try:
        yield CosineSiamese
    finally:
        METHODS.unregister("cosine_siamese")


def test_add_a_method(cosine_siamese, tiny_db, tmp_path, one_thread):
    def make(encoder=None):
        torch.manual_seed(0)
        return build_method("cosine_siamese", encoder or build_encoder(), {"hidden_dim": 32})

    check_step_contract(make())
    check_validation_has_no_side_effects(make())
    check_collapse_guard(make)
    overrides = [*TINY_RUN, "augmentation_options.size=32", "health.knn_k=3"]
    out = run_pretraining(
        tiny_db, tmp_path / "run", method="cosine_siamese", overrides=overrides, device="cpu"
    )
    rows = read_csv(out / "metrics.csv")
    assert [r["epoch"] for r in rows] == ["0"]
    for key in ("train_loss", "val_loss", "knn_bacc", "knn_gain", "collapse_std"):
        assert np.isfinite(float(rows[0][key])), key
    assert -1 <= float(rows[0]["train_loss"]) <= 1  # a negative cosine
    assert read_json(out / "done.json")["health"]
    state = torch.load(out / "encoder.pt", weights_only=True)
    assert "conv1.weight" in state and not any(k.startswith("fc.") for k in state)


# ----------------------------------------------------------------------------- add a source


class PngFolder(Source):
    """A flat folder of ``<class>_<i>.png`` greyscale images, no masks, no patients."""

    modality = "us"

    def records(self):
        top = self.locate(lambda p: any(p.glob("*.png")), "a folder of <class>_<i>.png images")
        out = []
        for path in sorted(top.glob("*.png")):
            label = path.stem.rsplit("_", 1)[0]
            if label not in CLASSES:
                self.problem(DataError(f"{path.name}: no class in its name", file=str(path)))
                continue
            out.append(
                Record(
                    source=self.name, file=path.relative_to(self.root).as_posix(), label=label,
                    modality=self.modality, patient=None, mask_files=(),
                    loader=functools.partial(load_image_and_masks, path, (), with_mask=False),
                    has_mask=False,
                )
            )  # fmt: skip
        return out

    @classmethod
    def write_phantoms(cls, root: Path, counts, stream, *, scale=1.0):
        folder = root / "png_folder"
        folder.mkdir(parents=True, exist_ok=True)
        for ci, label in enumerate(CLASSES):
            for i in range(counts.get(label, 0)):
                rng = stream(ci, i)
                rgb, _ = render_ultrasound(rng, label, size=phantom_size(rng, scale))
                save_image(folder / f"{label}_{i}.png", rgb, "PNG")
        return folder


@pytest.fixture
def png_folder():
    register_source("png_folder")(PngFolder)
    try:
        yield PngFolder
    finally:
        SOURCES.unregister("png_folder")


def test_add_a_source(png_folder, tmp_path):
    counts = {"normal": 7, "benign": 7, "malignant": 5}
    root = write_source("png_folder", tmp_path / "download", counts, seed=0, scale=0.25)
    check_source_contract("png_folder", root, counts, patients=False)
    check_source_accepts_parent_folder("png_folder", root)
    recipe = Recipe(
        name="PNG",
        quotas={
            "pretrain": {"png_folder": {"normal": 2, "benign": 2}},
            "finetune": {"png_folder": dict.fromkeys(CLASSES, 5)},  # 5 folds: 5 a class
        },
        sizes=Sizes(pretrain=48, finetune=32),
        tasks=("classification",),
    )
    sources = open_sources(recipe, {"png_folder": root}, lenient=False)
    db = Database.load(build_database(recipe, sources, tmp_path / "db"))
    assert [r.source for r in db.manifest] == ["png_folder"] * 19
    assert db.images("finetune").shape == (15, 32, 32)
    assert db.images("pretrain").shape == (4, 48, 48)
