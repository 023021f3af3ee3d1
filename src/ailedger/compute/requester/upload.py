"""A job bundle that arrives as uploaded files (the web app's submit form, a script
posting to ``/api/v1/jobs``) rather than as a directory on this machine.

The files come from a browser or a program, so their names are untrusted: each must be
a plain relative path inside the bundle (no ``..``, no absolute path, no backslash, no
hidden traversal through empty or dot parts), given once. They are copied into a fresh
staging directory in the home, bounded in total size while copying, and the directory is
then submitted exactly as ``ailedger job submit DIR`` would submit it, and removed.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any, Final

from ailedger.compute.jobs import MAX_BUNDLE_FILES, JobSpecError, UnsafeBundleError
from ailedger.errors import PayloadTooLargeError
from ailedger.home_layout import HomeLayout

if TYPE_CHECKING:
    from ailedger.compute.requester.job import Submitted
    from ailedger.session import Session

# What one upload may hold in all: code and small inputs (datasets are named, not sent).
MAX_UPLOAD_BYTES: Final = 64 << 20
MAX_NAME_CHARS: Final = 255
_CHUNK: Final = 1 << 16


def safe_name(name: str) -> PurePosixPath:
    """``name`` as a relative path inside the bundle, or :class:`UnsafeBundleError`."""
    path = PurePosixPath(name)
    if (
        not name
        or len(name) > MAX_NAME_CHARS
        or path.is_absolute()
        or "\\" in name
        or "\0" in name
        or any(part in ("", ".", "..") for part in name.split("/"))
    ):
        raise UnsafeBundleError(
            f"file name {name[:80]!r} is not a relative path inside the bundle "
            "(no '..', no leading '/', no backslash); rename the file and upload again"
        )
    return path


def stage_bundle(
    target: Path, uploads: Sequence[tuple[str, IO[bytes]]], limit: int = MAX_UPLOAD_BYTES
) -> Path:
    """Copy ``uploads`` ((name, readable)) into the new directory ``target``; refuse an
    unsafe or repeated name, too many files, or more than ``limit`` bytes in all."""
    if not uploads:
        raise JobSpecError("no files: upload job.toml and the files it names")
    if len(uploads) > MAX_BUNDLE_FILES:
        raise JobSpecError(f"{len(uploads)} files; a bundle holds at most {MAX_BUNDLE_FILES}")
    names = [safe_name(name) for name, _ in uploads]
    if len(set(names)) != len(names):
        raise JobSpecError("a file name is given twice; each file of the bundle goes once")
    target.mkdir(parents=True)
    total = 0
    for name, (_, source) in zip(names, uploads, strict=True):
        path = target.joinpath(*name.parts)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            out = path.open("xb")
        except OSError:
            raise JobSpecError(f"{name} is both a file and a directory in the upload") from None
        with out:
            while chunk := source.read(_CHUNK):
                total += len(chunk)
                if total > limit:
                    raise PayloadTooLargeError(
                        f"the upload is over {limit} bytes; send code and small inputs only "
                        "(datasets are named in job.toml, not uploaded)"
                    )
                out.write(chunk)
    return target


def submit_uploaded(
    session: Session,
    uploads: Sequence[tuple[str, IO[bytes]]],
    limit: int = MAX_UPLOAD_BYTES,
    **options: Any,
) -> Submitted:
    """Stage ``uploads`` as a bundle and submit it (``options``: those of
    :func:`~ailedger.compute.requester.job.submit`); the staging copy is removed after.
    The bundle the providers fetch is the one ``submit`` keeps under its hash."""
    from ailedger.compute.requester.job import submit

    root = HomeLayout(session.home.path).jobs
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".upload-", dir=root))
    try:
        bundle = stage_bundle(staging / "bundle", uploads, limit)
        return submit(session, bundle, **options)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
