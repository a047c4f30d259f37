"""How a benchmark evaluates an encoder: fine-tuning, or the encoder frozen.

A benchmark's ``evaluations`` list names entries of :data:`EVALUATIONS`; each says which run
kind it plans (``finetune``: a fine-tuning run, :mod:`medssl.tasks.finetune`; ``probe``: a
frozen-encoder probe, :mod:`medssl.tasks.probe`), which tasks it serves, and what it lays
over the fine-tuning config. Every evaluation is applied to every initialisation, random
init included (the baseline a probe is compared with), and to every label fraction.

- ``finetune``: the thesis's fine-tuning (every task);
- ``frozen``: fine-tuning with the encoder frozen (``freeze_encoder``), the decoder trained
  only: the segmentation counterpart of a probe (segmentation only: classification's frozen
  encoder is the ``linear`` probe);
- ``linear`` / ``knn``: the classification probes on cached frozen features.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from medssl.registry import Registry


@dataclass(frozen=True)
class Evaluation:
    name: str
    kind: str  # finetune | probe: the run kind it plans
    tasks: tuple[str, ...] | None = None  # the tasks it serves (None: every task)
    finetune: dict[str, Any] = field(default_factory=dict)  # laid over FinetuneConfig

    def serves(self, task: str) -> bool:
        return self.tasks is None or task in self.tasks


EVALUATIONS: Registry[Evaluation] = Registry("evaluation")
for _e in (
    Evaluation("finetune", "finetune"),
    Evaluation("frozen", "finetune", ("segmentation",), {"freeze_encoder": True}),
    Evaluation("linear", "probe", ("classification",)),
    Evaluation("knn", "probe", ("classification",)),
):
    EVALUATIONS.add(_e.name, _e)


def get_evaluation(name: str) -> Evaluation:
    return EVALUATIONS.get(name)
