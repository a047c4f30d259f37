"""Contract test over every registered fine-tuning task (``tests/contracts.py``): a new task is
tested by registering it, without a new test."""

from __future__ import annotations

import pytest

from contracts import check_task_contract
from medssl.tasks.task import task_names


@pytest.mark.parametrize("name", task_names())
def test_task_contract(name, tiny_db):
    check_task_contract(name, tiny_db)
