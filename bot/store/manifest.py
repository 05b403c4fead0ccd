"""The manifest a version is published with, and the store's errors."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

MANIFEST_FORMAT = 1


class StoreError(RuntimeError):
    """The knowledge store is missing or unusable; the message says what to do."""


class StoreMissingError(StoreError):
    pass


class EmbeddingMismatchError(StoreError):
    pass


class PointerDamagedError(StoreError):
    """The pointer exists but cannot be followed; the message says what is wrong with it."""


@dataclass(frozen=True)
class Manifest:
    """What the pointer says about the current version."""

    version: str
    collection: str
    embedding_model: str
    dimension: int
    chunks: int
    units: int
    created_at: str
    format: int = MANIFEST_FORMAT
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Manifest":
        """Raises ValueError when `text` is not a manifest (not JSON, not an object, fields missing)."""
        data = json.loads(text)  # json.JSONDecodeError is a ValueError
        if not isinstance(data, dict):
            raise ValueError(f"a JSON {type(data).__name__}, not an object")
        missing = [k for k in ("version", "collection", "embedding_model", "dimension") if not data.get(k)]
        if missing:
            raise ValueError(f"no {', '.join(missing)}")
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        try:
            return cls(**known)
        except TypeError as exc:
            raise ValueError(str(exc)) from None


def new_version_id() -> str:
    # Sortable by time; the random tail keeps two ingests in one second apart.
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


def check_embedding_model(manifest: Manifest, model_name: str, dimension: int) -> None:
    if manifest.embedding_model != model_name or manifest.dimension != dimension:
        raise EmbeddingMismatchError(
            f"The knowledge store was built with embedding model {manifest.embedding_model!r} "
            f"({manifest.dimension} dimensions), but EMBEDDING_MODEL is {model_name!r} "
            f"({dimension} dimensions). Run `python -m ingest --rebuild` to rebuild the store "
            "with the configured model, or set EMBEDDING_MODEL back."
        )
