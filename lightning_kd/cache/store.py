"""TeacherLogitCache: the teacher's logits of every augmented view of every training image, computed once.

A frozen teacher in eval mode is a fixed function, and CIFAR's training augmentation (a crop of the image
zero-padded by 4, 81 offsets, times a horizontal flip) is a finite space: 162 views per image. The cache holds
one entry per (sample index, crop offset, flip) — never per sample index alone, which would silently serve the
logits of another view — and serves them in place of the teacher's forward pass.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from lightning_kd._validation import check_positive_int
from lightning_kd.cache.identity import CacheIdentity, CacheMismatchError
from lightning_kd.data import AugmentationViews

__all__ = ["TeacherLogitCache", "view_index"]

_FORMAT = 1
_NUMPY = {"float32": np.float32, "float16": np.float16}
_TORCH = {"float32": torch.float32, "float16": torch.float16}


def view_index(views: AugmentationViews, padding: int, flip: bool) -> Tensor:
    """The view number of each sample, ``(dy * (2 p + 1) + dx) * F + flip`` with ``F = 2`` with the flip, else 1.

    Example:
        >>> zero, last = torch.tensor([0, 0]), torch.tensor([0, 8])
        >>> v = AugmentationViews(zero, last, last, torch.tensor([0, 1]))
        >>> view_index(v, padding=4, flip=True).tolist()  # the first and the last of the 162 views
        [0, 161]
    """
    side, flips = 2 * padding + 1, 2 if flip else 1
    return (views.dy * side + views.dx) * flips + (views.flip if flip else 0)


class TeacherLogitCache:
    """Exact teacher logits per augmented view, on the accelerator or in memory-mapped files on disk.

    Give it to :class:`~lightning_kd.DistillationModule` or :class:`~lightning_kd.AblationModule`
    (``teacher_cache=``) with a DataModule that yields the views (``return_views=True``) of an enumerable
    augmentation (``DataModule.augmentation_space``: CIFAR-100's crop and flip, Fashion-MNIST's crop, digits
    without augmentation). At the start of fit it is bound to the run's identity
    (:class:`~lightning_kd.cache.CacheIdentity`: the teacher's weights, the training data, the teacher's input
    pipeline, the space, dtype and storage); a cache on disk with another identity is refused with the fields that
    differ. Nothing is ever served from a mismatching cache.

    Filling: ``fill="lazy"`` computes the teacher for a batch with views not seen yet and stores them (one host
    read per step, until the whole space is filled; single process only); ``fill="precomputed"`` requires a
    complete cache (``lightning-kd cache fill --config RECIPE``) and then never runs the teacher in training, with
    no host read (any number of DDP processes read it).

    Args:
        path: A folder for the cache's files (``meta.json`` and ``.npy`` memory maps), reused across epochs,
            arms, seeds and runs; ``None`` keeps the cache in memory for one run.
        dtype: ``"float32"`` (exact: the logits the teacher computes) or ``"float16"`` (half the size; logits
            rounded to float16).
        storage: ``"device"`` holds the table on the training device (read with no host synchronisation),
            ``"mmap"`` reads it from the memory-mapped files (indices go to the host each step), ``"auto"``:
            ``"device"`` on an accelerator, ``"mmap"`` on the CPU.
        top_k: Keep only the ``top_k`` largest logits per view and the mean of the rest, which stand in for
            every other logit: smaller, and **no longer exact** (a documented approximation).
        fill: ``"lazy"`` or ``"precomputed"`` (see above).

    Example:
        >>> cache = TeacherLogitCache(dtype="float16", top_k=5)
        >>> cache.dtype, cache.top_k, cache.is_bound
        ('float16', 5, False)
    """

    def __init__(
        self,
        path: str | None = None,
        *,
        dtype: Literal["float32", "float16"] = "float32",
        storage: Literal["auto", "device", "mmap"] = "auto",
        top_k: int | None = None,
        fill: Literal["lazy", "precomputed"] = "lazy",
    ) -> None:
        if dtype not in _NUMPY:
            raise ValueError(f"Expected argument `dtype` to be 'float32' or 'float16', but got {dtype!r}.")
        if storage not in ("auto", "device", "mmap"):
            raise ValueError(f"Expected argument `storage` to be 'auto', 'device' or 'mmap', but got {storage!r}.")
        if fill not in ("lazy", "precomputed"):
            raise ValueError(f"Expected argument `fill` to be 'lazy' or 'precomputed', but got {fill!r}.")
        if storage == "mmap" and path is None:
            raise ValueError("Expected argument `path` for `storage='mmap'` (the memory-mapped files), but got None.")
        self.path = None if path is None else Path(path)
        self.dtype = dtype
        self.storage = storage
        self.top_k = None if top_k is None else check_positive_int("top_k", top_k)
        self.fill = fill
        self.identity: CacheIdentity | None = None
        self._arrays: dict[str, np.ndarray] = {}
        self._tensors: dict[str, Tensor] = {}
        self._device = torch.device("cpu")
        self._mode: Literal["device", "mmap"] = "device"
        self._complete = False

    @classmethod
    def from_path(cls, path: str) -> TeacherLogitCache:
        """The cache of a folder with the storage it was filled with (``dtype``, ``top_k``); a new folder gets the
        defaults (float32, every logit).

        Example:
            >>> TeacherLogitCache.from_path("no/such/folder").dtype
            'float32'
        """
        meta = Path(path) / "meta.json"
        if not meta.is_file():
            return cls(path)
        identity = CacheIdentity.from_json(json.loads(meta.read_text())["identity"])
        return cls(path, dtype=identity.dtype, top_k=identity.top_k)  # type: ignore[arg-type]

    # ----------------------------------------------------------------------------------------------------
    @property
    def is_bound(self) -> bool:
        """Whether :meth:`bind` attached the cache to a run."""
        return self.identity is not None

    @property
    def complete(self) -> bool:
        """Whether every view of every image is filled."""
        return self._complete

    def _shapes(self, identity: CacheIdentity) -> dict[str, tuple[tuple[int, ...], type]]:
        n, v, c = identity.num_samples, identity.num_views, identity.num_classes
        values = _NUMPY[self.dtype]
        if self.top_k is None:
            shapes: dict[str, tuple[tuple[int, ...], type]] = {"logits": ((n, v, c), values)}
        else:
            k = min(self.top_k, c)
            shapes = {
                "topk_values": ((n, v, k), values),
                "topk_indices": ((n, v, k), np.int16 if c <= 2**15 else np.int32),
                "rest_mean": ((n, v), values),
            }
        shapes["filled"] = ((n, v), np.bool_)
        return shapes

    def bind(self, identity: CacheIdentity, device: torch.device | str, *, world_size: int = 1) -> None:
        """Attach the cache to a run: open its files (refusing another identity) or create them.

        Raises:
            CacheMismatchError: When the cache on disk belongs to another teacher, data, input, space or storage.
            ValueError: For ``fill="precomputed"`` with an incomplete cache, or ``fill="lazy"`` under several
                processes (a lazily filled cache would be filled differently by each).
        """
        identity = dataclasses.replace(identity, dtype=self.dtype, top_k=self.top_k)
        device = torch.device(device)
        if self.fill == "lazy" and world_size > 1:
            raise ValueError(
                f"Expected `fill='precomputed'` for a teacher-logit cache under {world_size} processes, but got"
                " 'lazy': each process would fill its own copy. Fill it first with `lightning-kd cache fill`."
            )
        self._mode = (
            "device" if self.storage == "device" or (self.storage == "auto" and device.type != "cpu") else "mmap"
        )
        if self.path is None:
            self._tensors = {
                name: torch.zeros(shape, dtype=_to_torch(kind), device=device)
                for name, (shape, kind) in self._shapes(identity).items()
            }
        else:
            self._open_files(identity)
            if self._mode == "device":
                self._tensors = {name: torch.from_numpy(np.array(a)).to(device) for name, a in self._arrays.items()}
        self.identity, self._device = identity, device
        self._complete = bool(self._filled_all())
        if self.fill == "precomputed" and not self._complete:
            raise ValueError(
                f"Expected a complete teacher-logit cache for `fill='precomputed'`, but {self.path} has"
                f" {self.filled_fraction():.1%} of its views: fill it with `lightning-kd cache fill`."
            )

    def _open_files(self, identity: CacheIdentity) -> None:
        assert self.path is not None
        meta = self.path / "meta.json"
        shapes = self._shapes(identity)
        if meta.is_file():
            stored = CacheIdentity.from_json(json.loads(meta.read_text())["identity"])
            differences = stored.differences(identity)
            if differences:
                raise CacheMismatchError(
                    f"The teacher-logit cache at {self.path} does not match this run: {'; '.join(differences)}."
                    " Nothing is served from it: use another `path` (or delete this one to fill it anew)."
                )
            mode: Literal["r+", "r"] = "r+" if self.fill == "lazy" else "r"
            self._arrays = {n: np.load(self.path / f"{n}.npy", mmap_mode=mode) for n in shapes}
            return
        if self.fill == "precomputed":
            raise ValueError(
                f"Expected a filled teacher-logit cache at {self.path} for `fill='precomputed'`, but it does not"
                " exist: fill it with `lightning-kd cache fill`."
            )
        self.path.mkdir(parents=True, exist_ok=True)
        self._arrays = {
            n: np.lib.format.open_memmap(self.path / f"{n}.npy", mode="w+", dtype=kind, shape=shape)
            for n, (shape, kind) in shapes.items()
        }
        meta.write_text(json.dumps({"format": _FORMAT, "identity": identity.to_json()}, indent=2) + "\n")

    # ----------------------------------------------------------------------------------------------------
    def filled_fraction(self) -> float:
        """The fraction of (image, view) entries filled."""
        filled = self._tensors["filled"] if self._mode == "device" or self.path is None else self._arrays["filled"]
        return float(filled.float().mean()) if isinstance(filled, Tensor) else float(np.mean(filled))

    def _filled_all(self) -> bool:
        return self.filled_fraction() == 1.0

    def _index(self, views: AugmentationViews) -> tuple[Tensor, Tensor]:
        assert self.identity is not None
        return views.index, view_index(views, self.identity.padding, self.identity.flip)

    def _read(self, index: Tensor, view: Tensor) -> tuple[Tensor, Tensor]:
        """The stored logits (float32, on the batch's device) and whether each entry was filled."""
        if self._mode == "device" or self.path is None:
            t = self._tensors
            filled = t["filled"][index, view]
            parts = {n: t[n][index, view] for n in t if n != "filled"}
        else:  # memory-mapped: the indices go to the host (a synchronisation on an accelerator)
            i, v = index.cpu().numpy(), view.cpu().numpy()
            filled = torch.from_numpy(self._arrays["filled"][i, v]).to(index.device)
            parts = {
                n: torch.from_numpy(np.asarray(a[i, v])).to(index.device)
                for n, a in self._arrays.items()
                if n != "filled"
            }
        return self._logits(parts), filled

    def _logits(self, parts: dict[str, Tensor]) -> Tensor:
        if "logits" in parts:
            return parts["logits"].float()
        assert self.identity is not None
        values, indices, rest = parts["topk_values"].float(), parts["topk_indices"].long(), parts["rest_mean"].float()
        full = rest.unsqueeze(1).expand(rest.shape[0], self.identity.num_classes).clone()
        return full.scatter_(1, indices, values)

    def write(self, views: AugmentationViews, logits: Tensor) -> None:
        """Store the teacher's logits of these views (overwriting any earlier value)."""
        index, view = self._index(views)
        parts = self._encode(logits.detach())
        if self._mode == "device" or self.path is None:
            for name, value in parts.items():
                self._tensors[name][index, view] = value.to(self._tensors[name].dtype)
            self._tensors["filled"][index, view] = True
        else:
            i, v = index.cpu().numpy(), view.cpu().numpy()
            for name, value in parts.items():
                self._arrays[name][i, v] = value.cpu().numpy().astype(self._arrays[name].dtype)
            self._arrays["filled"][i, v] = True

    def _encode(self, logits: Tensor) -> dict[str, Tensor]:
        values = logits.to(_TORCH[self.dtype])
        if self.top_k is None:
            return {"logits": values}
        k = min(self.top_k, logits.shape[1])
        top = logits.float().topk(k, dim=1)
        rest = (logits.float().sum(1) - top.values.sum(1)) / max(logits.shape[1] - k, 1)
        return {
            "topk_values": top.values.to(values.dtype),
            "topk_indices": top.indices,
            "rest_mean": rest.to(values.dtype),
        }

    def teacher_logits(self, views: AugmentationViews, compute: Callable[[], Tensor]) -> Tensor:
        """The teacher's logits of a batch: from the cache, computing (``compute()``) and storing the missing ones
        in lazy mode. A complete cache serves every batch without running the teacher or reading the device."""
        if not self.is_bound:
            raise RuntimeError("The teacher-logit cache is not bound to a run (DistillationModule binds it at fit).")
        index, view = self._index(views)
        cached, filled = self._read(index, view)
        if self._complete:
            return cached
        if bool(filled.all()):  # lazy mode only: one host read per step until the space is full
            return cached
        fresh = self._logits(self._encode(compute().detach()))  # what the cache will serve for them from now on
        merged = torch.where(filled.unsqueeze(1), cached, fresh)
        self.write(views, merged)
        return merged

    def flush(self) -> None:
        """Write what was filled to the files (device storage) and re-check completeness."""
        if self.path is not None and self._mode == "device" and self.fill == "lazy" and self._tensors:
            for name, tensor in self._tensors.items():
                self._arrays[name][...] = tensor.cpu().numpy()
        for array in self._arrays.values():
            if isinstance(array, np.memmap):
                array.flush()
        if self.is_bound:
            self._complete = self._filled_all()

    def nbytes(self) -> int:
        """The size of the table in bytes."""
        arrays = self._tensors or self._arrays
        return int(
            sum((a.element_size() * a.nelement()) if isinstance(a, Tensor) else a.nbytes for a in arrays.values())
        )


def _to_torch(kind: type) -> torch.dtype:
    return torch.from_numpy(np.zeros(1, dtype=kind)).dtype
