"""Teachers: loading them from checkpoints, freezing them, and adapting the student's inputs to them.

The checkpoint formats read by :func:`load_teacher`:

* a Lightning ``.ckpt`` (weights under ``"state_dict"``);
* a ``.pth``/``.pt`` dict with the weights under ``"model"`` — the format of the widely shared CIFAR-100
  teacher checkpoints of the KD literature — or under ``"state_dict"``/``"model_state_dict"``;
* a plain state_dict;
* a pickled ``nn.Module``.

Key prefixes added by wrappers (``module.`` from DataParallel/DDP, ``model.``/``net.`` from LightningModules
holding the network as an attribute — a :class:`~lightning_kd.DistillationModule` checkpoint holds its student
under ``model.``, so a distilled student can teach — and ``student.``/``_orig_mod.``) are removed when that
makes the keys match the architecture.
"""

from __future__ import annotations

import copy
import hashlib
import pickle
import re
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["TeacherInputAdapter", "freeze", "load_teacher", "state_dict_from_checkpoint", "state_dict_sha256"]

_PREFIXES = ("module.", "model.", "net.", "student.", "_orig_mod.")
_WEIGHT_KEYS = ("state_dict", "model", "model_state_dict", "net", "weights")


def freeze(model: nn.Module) -> nn.Module:
    """Put ``model`` in eval mode with ``requires_grad=False`` on every parameter; return it.

    Example:
        >>> from torch import nn
        >>> frozen = freeze(nn.Linear(2, 2))
        >>> frozen.training, any(p.requires_grad for p in frozen.parameters())
        (False, False)
    """
    model.eval()
    model.requires_grad_(False)
    return model


def state_dict_sha256(module: nn.Module) -> str:
    """The identity of a network's weights: the SHA-256 of its ``state_dict`` (names, dtypes, shapes, values).

    Two networks with the same architecture and weights give the same digest, wherever their tensors are
    (device, memory format); any changed value, buffer (BatchNorm statistics), name or dtype changes it. It
    identifies a teacher in a run's hyperparameters and checkpoints, so a later ``analyze``, a resume or a
    teacher-logit cache can tell that the teacher file changed.

    Example:
        >>> from torch import nn
        >>> import torch
        >>> a = nn.Linear(2, 2)
        >>> b = nn.Linear(2, 2)
        >>> _ = b.load_state_dict(a.state_dict())
        >>> state_dict_sha256(a) == state_dict_sha256(b), len(state_dict_sha256(a))
        (True, 64)
        >>> with torch.no_grad():
        ...     _ = b.weight.add_(1)
        >>> state_dict_sha256(a) == state_dict_sha256(b)
        False
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{value.dtype}|{tuple(value.shape)}|".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    return digest.hexdigest()


# What torch.load raises on a file it cannot read as a checkpoint: a zip that is not torch's (RuntimeError from
# its zip reader), a truncated or empty file (EOFError), bytes that are no pickle (UnpicklingError, or
# IndexError/KeyError/ValueError/struct.error from the unpickler's stack), a pickle with no torch magic number
# (RuntimeError).
_UNREADABLE = (RuntimeError, EOFError, pickle.UnpicklingError, IndexError, KeyError, ValueError, struct.error)
# The weights-only unpickler names the global it refused ("Unsupported global: GLOBAL argparse.Namespace was
# not an allowed global by default", "Trying to load unsupported GLOBAL os.system whose module os is blocked").
_DISALLOWED_GLOBAL = re.compile(r"GLOBAL (\S+) (was not an allowed global|whose module \S+ is blocked)")
# The parts of torch's zip-reader errors that say nothing about this file.
_TORCH_BOILERPLATE = re.compile(r"^\[enforce fail at [^\]]*\]\s*\.?\s*|\s*This is an internal miniz error.*$")


def _disallowed_global(error: BaseException) -> tuple[str, bool] | None:
    """``(name, blocked)`` of the global a weights-only load refused, if that is why it failed (torch wraps the
    unpickler's error); ``blocked``: from a module torch never allows (``os``, ``sys``, ...)."""
    for candidate in (error, error.__cause__, error.__context__):
        match = _DISALLOWED_GLOBAL.search(str(candidate)) if candidate is not None else None
        if match:
            return match.group(1).rstrip("."), match.group(2).startswith("whose")
    return None


def _load_file(path: Path, weights_only: bool) -> Any:
    """``torch.load`` a teacher file onto the CPU, with errors that say what is wrong with the file.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = Path(folder) / "teacher.yaml"
        ...     _ = path.write_text("model: resnet32x4\\n")
        ...     _load_file(path, weights_only=True)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: ... not a PyTorch checkpoint or corrupt: .../teacher.yaml (size 18 bytes)...
    """
    if path.is_dir():
        inside = sorted(p.name for p in path.iterdir() if p.suffix in {".pt", ".pth", ".ckpt", ".bin"})
        hint = f" It holds {', '.join(inside[:5])}{' ...' if len(inside) > 5 else ''}." if inside else ""
        raise IsADirectoryError(
            f"Expected argument `teacher` to be a checkpoint file, but {path} is a directory.{hint}"
        )
    if not path.is_file():
        raise FileNotFoundError(
            f"Expected argument `teacher` to be an existing checkpoint file, but {path} does not exist."
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only)
    except _UNREADABLE as error:
        refused = _disallowed_global(error) if weights_only else None
        if refused is not None:
            name, blocked = refused
            advice = (
                " It calls into a module that can run any command on load: do not load it unless you made it"
                " yourself (then `teacher_weights_only=False`)."
                if blocked
                else " If you trust the file, pass `teacher_weights_only=False`."
            )
            raise ValueError(
                f"Could not load {path} with weights_only=True: it holds Python objects beyond tensors (the"
                f" global `{name}`, which safe loading refuses).{advice}"
            ) from error
        # torch wraps the weights-only unpickler's error in a long advice text: report the unpickler's own
        original = error.__context__ if isinstance(error, pickle.UnpicklingError) and weights_only else error
        original = original if original is not None else error
        detail = (str(original).strip().splitlines() or [""])[0]
        detail = _TORCH_BOILERPLATE.sub("", detail).strip().rstrip(".")[:200]
        raise ValueError(
            "Expected argument `teacher` to be a checkpoint written by torch.save, but the file is not a PyTorch"
            f" checkpoint or corrupt: {path} (size {path.stat().st_size} bytes). torch.load failed with"
            f" {type(original).__name__}{': ' + detail if detail else ''}."
        ) from error


def state_dict_from_checkpoint(checkpoint: Any) -> dict[str, Tensor]:
    """Find the weights in a loaded checkpoint object (see the module docstring for the formats).

    Example:
        >>> import torch
        >>> sd = state_dict_from_checkpoint({"model": {"fc.weight": torch.zeros(2, 2)}, "epoch": 240})
        >>> list(sd)
        ['fc.weight']
    """
    if isinstance(checkpoint, nn.Module):
        return dict(checkpoint.state_dict())
    if isinstance(checkpoint, Mapping):
        for key in _WEIGHT_KEYS:
            inner = checkpoint.get(key)
            if isinstance(inner, Mapping) and inner and all(isinstance(v, Tensor) for v in inner.values()):
                return dict(inner)
            if isinstance(inner, nn.Module):
                return dict(inner.state_dict())
        if checkpoint and all(isinstance(v, Tensor) for v in checkpoint.values()):
            return dict(checkpoint)
        raise ValueError(
            "Expected the teacher checkpoint to hold weights under one of "
            f"{', '.join(repr(k) for k in _WEIGHT_KEYS)} or to be a plain state_dict, but got a dict with keys"
            f" {sorted(map(str, checkpoint))[:10]}."
        )
    raise ValueError(
        f"Expected the teacher checkpoint to be a dict or an nn.Module, but got {type(checkpoint).__name__}."
    )


def _align_keys(state_dict: dict[str, Tensor], expected: Sequence[str]) -> dict[str, Tensor]:
    """Strip wrapper prefixes when that makes more keys match ``expected``."""
    wanted = set(expected)
    best, best_hits = state_dict, len(wanted & set(state_dict))
    frontier = [state_dict]
    for _ in range(3):  # nested wrappers, e.g. "module.model."
        next_frontier = []
        for candidate in frontier:
            for prefix in _PREFIXES:
                stripped = {k[len(prefix) :]: v for k, v in candidate.items() if k.startswith(prefix)}
                if not stripped:
                    continue
                hits = len(wanted & set(stripped))
                if hits > best_hits:
                    best, best_hits = stripped, hits
                next_frontier.append(stripped)
        frontier = next_frontier
    return best


def _infer_num_classes(state_dict: Mapping[str, Tensor]) -> int | None:
    matrices = [v for k, v in state_dict.items() if k.endswith("weight") and v.ndim == 2]
    return int(matrices[-1].shape[0]) if matrices else None


def load_teacher(
    teacher: nn.Module | str | Path,
    *,
    arch: str | None = None,
    num_classes: int | None = None,
    in_chans: int = 3,
    arch_kwargs: Mapping[str, Any] | None = None,
    weights_only: bool = True,
) -> nn.Module:
    """Build a frozen teacher from a module or a checkpoint file.

    Args:
        teacher: An ``nn.Module`` (a frozen copy of it is returned: the module you pass is not changed), or
            the path of a checkpoint (formats in the module docstring).
        arch: The architecture's name in :func:`lightning_kd.models.create_model` when the file holds only
            weights (e.g. ``"resnet32x4"``).
        num_classes: The teacher's class count; inferred from its classifier's weights when omitted.
        in_chans: Input channels of the architecture.
        arch_kwargs: More keyword arguments for ``create_model``.
        weights_only: Load the file with ``torch.load(weights_only=True)`` (safe; default). Set False only for
            trusted files that hold pickled objects.

    Returns:
        The teacher in eval mode with ``requires_grad=False`` on every parameter (a new object).

    Raises:
        FileNotFoundError: If the path does not exist.
        IsADirectoryError: If the path is a directory.
        ValueError: If the file is not a PyTorch checkpoint or is corrupt (the message gives its path and size);
            if safe loading refuses a Python global the file needs (the message names it); if the file holds
            weights but no ``arch`` is given, or the weights do not fit the architecture: the message lists the
            missing, unexpected and mis-shaped keys.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> mine = nn.Linear(4, 3)
        >>> teacher = load_teacher(mine)
        >>> teacher.training, mine.training, mine.weight.requires_grad
        (False, True, True)
    """
    if isinstance(teacher, nn.Module):
        # A copy: the caller's module keeps its mode and its requires_grad flags, so it can still be trained
        # or used elsewhere; the teacher of the run is this frozen copy.
        return freeze(copy.deepcopy(teacher))
    path = Path(teacher).expanduser()
    loaded = _load_file(path, weights_only)
    if isinstance(loaded, nn.Module) and arch is None:
        return freeze(loaded)
    state_dict = state_dict_from_checkpoint(loaded)
    if arch is None:
        raise ValueError(
            f"Expected argument `teacher_arch` to name the teacher's architecture, since {path} holds only"
            " weights, but got None. Pass e.g. teacher_arch='resnet32x4' (see lightning_kd.models.list_models())."
        )
    from lightning_kd.models import create_model

    if num_classes is None:
        num_classes = _infer_num_classes(state_dict)
        if num_classes is None:
            raise ValueError(f"Could not infer the teacher's `num_classes` from {path}: pass num_classes.")
    model = create_model(arch, num_classes=num_classes, in_chans=in_chans, **dict(arch_kwargs or {}))
    expected = model.state_dict()
    state_dict = _align_keys(state_dict, list(expected))
    missing = [k for k in expected if k not in state_dict and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state_dict if k not in expected]
    mis_shaped = [
        f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state_dict and state_dict[k].shape != v.shape
    ]
    if missing or unexpected or mis_shaped:

        def head(items: list[str]) -> str:
            return ", ".join(items[:8]) + (f" ... ({len(items)} in all)" if len(items) > 8 else "") or "none"

        raise ValueError(
            f"The teacher checkpoint {path} does not match architecture {arch!r} (num_classes={num_classes}):"
            f" missing keys: {head(missing)}; unexpected keys: {head(unexpected)}; shape mismatches:"
            f" {head(mis_shaped)}."
        )
    model.load_state_dict(state_dict, strict=False)  # strictness checked above, num_batches_tracked optional
    return freeze(model)


class TeacherInputAdapter(nn.Module):
    """Turn the student's input batch into the teacher's: re-normalize and/or resize.

    Useful when the teacher was trained with other normalization statistics or another resolution (a 224-px
    ViT student with a 32-px CNN teacher, or the reverse). Undoes the student's normalization, applies the
    teacher's, then resizes bilinearly.

    Args:
        student_mean: Per-channel mean the student's inputs were normalized with (None: no re-normalization).
        student_std: Per-channel std of the student's normalization.
        teacher_mean: Per-channel mean the teacher expects.
        teacher_std: Per-channel std the teacher expects.
        size: The teacher's input size (an int for square images), or None to keep the size.

    Example:
        >>> import torch
        >>> adapter = TeacherInputAdapter(student_mean=(0.5,), student_std=(0.5,), teacher_mean=(0.0,),
        ...                               teacher_std=(1.0,), size=4)
        >>> adapter(torch.zeros(1, 1, 2, 2))  # student-normalized 0 is pixel 0.5
        tensor([[[[0.5000, 0.5000, 0.5000, 0.5000],
                  [0.5000, 0.5000, 0.5000, 0.5000],
                  [0.5000, 0.5000, 0.5000, 0.5000],
                  [0.5000, 0.5000, 0.5000, 0.5000]]]])
    """

    scale: Tensor
    shift: Tensor

    def __init__(
        self,
        student_mean: Sequence[float] | None = None,
        student_std: Sequence[float] | None = None,
        teacher_mean: Sequence[float] | None = None,
        teacher_std: Sequence[float] | None = None,
        size: int | tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        stats = (student_mean, student_std, teacher_mean, teacher_std)
        self.renormalize = any(s is not None for s in stats)
        if self.renormalize:
            if any(s is None for s in stats):
                raise ValueError(
                    "Expected arguments `student_mean`, `student_std`, `teacher_mean` and `teacher_std` to be"
                    " given together, but some are None."
                )
            s_mean, s_std, t_mean, t_std = (torch.tensor(s, dtype=torch.float32) for s in stats)
            if not (len(s_mean) == len(s_std) == len(t_mean) == len(t_std)):
                raise ValueError("Expected the four normalization statistics to have one value per channel each.")
            if bool((s_std <= 0).any()) or bool((t_std <= 0).any()):
                raise ValueError("Expected arguments `student_std` and `teacher_std` to be positive.")
            # x_teacher = ((x * s_std + s_mean) - t_mean) / t_std = x * scale + shift
            self.register_buffer("scale", (s_std / t_std).view(1, -1, 1, 1), persistent=False)
            self.register_buffer("shift", ((s_mean - t_mean) / t_std).view(1, -1, 1, 1), persistent=False)
        if isinstance(size, int):
            size = (size, size)
        self.size = size

    def forward(self, x: Tensor) -> Tensor:
        if self.renormalize and x.ndim == 4:
            x = x * self.scale.to(x.dtype) + self.shift.to(x.dtype)
        if self.size is not None and x.ndim == 4 and tuple(x.shape[-2:]) != self.size:
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
        return x
