"""Task registry: what a model learns, as in-memory arrays with a fixed train / validation / test split.

``load_task(TaskConfig(name, params), data_root)`` returns a :class:`Task`. Generated tasks (``mnist1d``,
``teacher``) need no files; image datasets are read from their standard files under ``data_root``
(``--data-root`` or ``$RGNET_DATA``). A task declares its label (:func:`task_label`) and which of its parameters
permute the inputs (:func:`input_order`, :func:`symmetric`).
"""

from rgnet.tasks import images, mnist1d, teacher  # noqa: F401  (register the built-in tasks)
from rgnet.tasks.registry import (
    TASKS,
    Task,
    TaskSpec,
    input_order,
    load_task,
    non_negative,
    positive,
    register,
    resolve_params,
    split_validation,
    symmetric,
    task_label,
)

__all__ = ["TASKS", "Task", "TaskSpec", "input_order", "load_task", "non_negative", "positive", "register",
           "resolve_params", "split_validation", "symmetric", "task_label"]
