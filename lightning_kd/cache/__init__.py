"""An exact teacher-logit cache: the teacher computed once per augmented view, reused across epochs, arms, seeds
and runs. See :class:`TeacherLogitCache`."""

from lightning_kd.cache.identity import CacheIdentity, CacheMismatchError
from lightning_kd.cache.store import TeacherLogitCache, view_index

__all__ = ["CacheIdentity", "CacheMismatchError", "TeacherLogitCache", "view_index"]
