"""serve_app/ as a content-addressed, deterministic zip: the code the Ray pods run.

The same bytes for the same sources on any machine (sorted entries, fixed timestamps and
modes, no caches), so the object key `serve_app-<sha256>.zip` changes exactly when the code
does, and `pulumi up` rolls it out through `serveConfigV2` (applied in place by KubeRay).

Ray unpacks a remote `working_dir` zip and drops its single top-level directory
(`ray/_private/runtime_env/packaging.py`, `unzip_package(remove_top_level_directory=True)`
for remote URIs, Ray 2.60), so the entries are `bundle/serve_app/...`: the working dir then
holds `serve_app/`, and the import path `serve_app.app:build_app` resolves.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # infra/serving/code_bundle.py -> the repo
PACKAGE = "serve_app"
TOP_LEVEL = "bundle"
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry
_SKIP_DIRS = {"__pycache__"}
_SKIP_SUFFIXES = (".pyc", ".pyo")


@dataclass(frozen=True)
class CodeBundle:
    data: bytes
    sha256: str
    files: tuple[str, ...]

    @property
    def version(self) -> str:
        """Short code version shown in the render summary and the app's labels."""
        return self.sha256[:12]

    def key(self, prefix: str) -> str:
        return f"{prefix}{PACKAGE}-{self.sha256}.zip"


def _sources(package_dir: Path) -> list[Path]:
    return sorted(
        p for p in package_dir.rglob("*")
        if p.is_file()
        and not _SKIP_DIRS.intersection(p.relative_to(package_dir).parts)
        and not p.name.endswith(_SKIP_SUFFIXES)
    )


def build(package_dir: Path = ROOT / PACKAGE) -> CodeBundle:
    """Zip `package_dir` deterministically under `bundle/<package name>/`."""
    buf = io.BytesIO()
    names: list[str] = []
    with zipfile.ZipFile(buf, "w") as zf:
        for path in _sources(package_dir):
            rel = path.relative_to(package_dir).as_posix()
            name = f"{TOP_LEVEL}/{package_dir.name}/{rel}"
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16  # rw-r--r--, whatever the checkout's umask
            info.create_system = 3  # Unix, on every platform
            zf.writestr(info, path.read_bytes(), compresslevel=9)
            names.append(name)
    data = buf.getvalue()
    return CodeBundle(data, hashlib.sha256(data).hexdigest(), tuple(names))


def write(bundle: CodeBundle, out_dir: Path = ROOT / "build" / "code") -> Path:
    """The bundle as a file (Pulumi uploads a FileAsset), named by its hash."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / bundle.key("")
    if not path.exists() or path.read_bytes() != bundle.data:
        path.write_bytes(bundle.data)
    return path
