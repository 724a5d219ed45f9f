"""Getting inputs and targets out of batches, and logits out of model outputs.

The defaults cover the common cases: ``(x, y)`` batches (or ``((x_weak, x_strong), y)`` for two augmented
views), dict batches with ``"image"``/``"input"``/``"x"`` and ``"label"``/``"target"``/``"y"`` keys, and
models returning logits, ``(logits, features)`` tuples (as in the CIFAR zoos of the KD literature) or dicts
with a ``"logits"`` key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import Tensor

__all__ = ["extract_logits", "split_batch"]

_INPUT_KEYS = ("image", "images", "input", "inputs", "x")
_TARGET_KEYS = ("label", "labels", "target", "targets", "y")


def _describe(value: Any) -> str:
    if isinstance(value, Tensor):
        return f"Tensor of shape {tuple(value.shape)}"
    if isinstance(value, Mapping):
        return f"dict with keys {sorted(map(str, value))}"
    if isinstance(value, (tuple, list)):
        return f"{type(value).__name__} of {len(value)} items ({', '.join(_describe(v) for v in value)})"
    return type(value).__name__


def split_batch(batch: Any) -> tuple[Tensor | tuple[Tensor, Tensor], Tensor | None]:
    """Split a batch into its input and target.

    Returns the input (a tensor, or a ``(weak, strong)`` pair of tensors for two-view batches) and the target
    (or ``None`` when the batch holds inputs only).

    Raises:
        ValueError: If the batch has none of the supported layouts; the message describes what it got.

    Example:
        >>> import torch
        >>> x, y = split_batch((torch.zeros(2, 3), torch.tensor([0, 1])))
        >>> x.shape, y.tolist()
        (torch.Size([2, 3]), [0, 1])
    """
    if isinstance(batch, Tensor):
        return batch, None
    if isinstance(batch, Mapping):
        x = next((batch[k] for k in _INPUT_KEYS if k in batch), None)
        y = next((batch[k] for k in _TARGET_KEYS if k in batch), None)
        if isinstance(x, Tensor):
            return x, y
    elif isinstance(batch, (tuple, list)) and len(batch) >= 1:
        x, y = batch[0], batch[1] if len(batch) >= 2 else None
        if isinstance(x, (tuple, list)) and len(x) == 2 and all(isinstance(v, Tensor) for v in x):
            return (x[0], x[1]), y
        if isinstance(x, Tensor) and (y is None or isinstance(y, Tensor)):
            return x, y
    raise ValueError(
        "Expected argument `batch` to be (inputs, targets), ((weak, strong), targets) or a dict with an"
        f" 'image'/'input' and a 'label'/'target' key, but got {_describe(batch)}. Give the batches one of these"
        " layouts (e.g. with the DataLoader's `collate_fn`), or, with the KnowledgeDistillation callback, pass"
        " `get_input` (and `get_target`) to say how to read them."
    )


def extract_logits(output: Any, key: str | int | Callable[[Any], Tensor] | None = None) -> Tensor:
    """Take the logits out of a model's output.

    Args:
        output: What the model's forward returned.
        key: ``None`` for the default rule (a tensor as is; the first item of a tuple/list; the ``"logits"``
            entry of a dict), a dict key or tuple index (a tensor output is still taken as is, so one key serves
            a student returning a dict and a teacher returning a tensor), or a callable mapping the output to
            the logits.

    Raises:
        ValueError: If no logits tensor of shape (batch, classes) can be found; the message says what the
            output was.

    Example:
        >>> import torch
        >>> logits, features = torch.zeros(2, 10), torch.zeros(2, 64)
        >>> extract_logits((logits, features)).shape
        torch.Size([2, 10])
        >>> extract_logits({"logits": logits, "features": features}).shape
        torch.Size([2, 10])
    """
    if callable(key):
        found: Any = key(output)
    elif isinstance(output, Tensor):
        found = output  # a tensor is the logits: a key or index applies to tuples and dicts (e.g. the teacher's)
    elif key is not None:
        try:
            found = output[key]
        except (KeyError, IndexError, TypeError):
            found = None
    elif isinstance(output, Mapping):
        found = output.get("logits")
    elif isinstance(output, (tuple, list)) and output:
        found = output[0]
    else:
        found = None
    if not isinstance(found, Tensor) or found.ndim != 2:
        raise ValueError(
            "Expected the model's output to hold logits of shape (batch, classes): a tensor, a (logits, ...)"
            f" tuple or a dict with a 'logits' key, but got {_describe(output)}"
            + (f" (looked up with {key!r})" if key is not None else "")
            + ". Pass `logits_key` to say where the logits are."
        )
    return found
