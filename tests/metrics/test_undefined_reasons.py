"""Every metric a run records that can be undefined has a reason the report can print."""

import numpy as np

from medssl.metrics.classification import classification_metrics
from medssl.metrics.undefined import undefined_note, why_undefined


def test_every_classification_metric_has_its_own_reason():
    y = np.array([0, 1, 2, 1])
    probs = np.full((4, 3), 1 / 3)
    generic = why_undefined("no_such_metric")
    for name in classification_metrics(y, probs):
        if name.startswith("confusion_") or name == "n":
            continue
        assert why_undefined(name) != generic, name
    assert "class benign" in why_undefined("sensitivity_benign")
    assert "pixel spacing" in why_undefined("hd_mm")


def test_note_lists_each_metric_once_in_order():
    note = undefined_note(["hd_mm", "balanced_accuracy", "hd_mm"])
    assert note.startswith("hd_mm: ") and note.count("hd_mm") == 1
    assert "balanced_accuracy: a class has no image" in note
    assert undefined_note([]) == ""
