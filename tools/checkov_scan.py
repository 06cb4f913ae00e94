"""checkov over the rendered Kubernetes manifests of every stack, with the checked-in skip list
(policy/checkov-skips.yaml). Exit 1 on any finding that is not skipped.

    python -m tools.checkov_scan [--build build] [--stacks dev staging prod]   (make checkov)

checkov runs from its own venv (.venv-checkov, `make checkov-venv`): its pins (networkx<2.7,
packaging 23.2, ...) would downgrade what torch and vLLM use in the program's venv.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
SKIPS = ROOT / "policy" / "checkov-skips.yaml"


@dataclass(frozen=True)
class Finding:
    check: str
    name: str
    resource: str
    file: str

    def __str__(self) -> str:
        return f"{self.check} {self.resource} ({self.file}): {self.name}"


def skips(path: Path = SKIPS) -> dict[str, str]:
    doc = yaml.safe_load(path.read_text()) or {}
    return {str(k): str(v) for k, v in (doc.get("skip") or {}).items()}


def scan(dirs: list[Path], skip: dict[str, str] | None = None) -> tuple[list[Finding], int]:
    """Failed checks over the YAML manifests in `dirs` (skipped checks excluded), and how many
    resources checkov judged."""
    if not CHECKOV.exists():
        raise FileNotFoundError(f"{CHECKOV} is missing: run `make checkov-venv`")
    skip = skips() if skip is None else skip
    with tempfile.TemporaryDirectory() as tmp:
        # One checkov run over one tree (checkov 3.3.30 reports nothing when given several -d).
        for d in dirs:
            target = Path(tmp) / d.parent.name
            target.mkdir()
            for f in sorted(d.glob("*.yaml")):
                shutil.copy(f, target / f.name)
        cmd = [str(CHECKOV), "--framework", "kubernetes", "--quiet", "--compact", "-o", "json",
               "--skip-download",  # no network: no guideline download, no platform upload
               "-d", tmp]
        if skip:
            cmd += ["--skip-check", ",".join(sorted(skip))]
        env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_NO_OUTPUT_COLOR": "1"}
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if out.returncode not in (0, 1):
        raise RuntimeError(f"checkov failed ({out.returncode}): {out.stderr[-2000:]}")
    reports = _documents(out.stdout)
    found, count = [], 0
    for rep in reports:
        count += int((rep.get("summary") or {}).get("resource_count", 0))
        for f in (rep.get("results") or {}).get("failed_checks", []):
            stack, _, name = str(f["file_path"]).strip("/").partition("/")
            found.append(Finding(f["check_id"], f["check_name"], f["resource"],
                                 f"build/{stack}/kubernetes/{name}"))
    return found, count


def _documents(text: str) -> list[dict]:
    """checkov prints one JSON document (or list) per scanned directory, back to back."""
    decoder, out, i = json.JSONDecoder(), [], 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        doc, i = decoder.raw_decode(text, i)
        out += doc if isinstance(doc, list) else [doc]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", type=Path, default=ROOT / "build")
    parser.add_argument("--stacks", nargs="+", default=["dev", "staging", "prod"])
    args = parser.parse_args(argv)
    dirs = [args.build / s / "kubernetes" for s in args.stacks]
    missing = [d for d in dirs if not d.is_dir()]
    if missing:
        print(f"error: no render in {missing}: run `make render-all` first", file=sys.stderr)
        return 2
    start = time.monotonic()
    found, count = scan(dirs)
    for f in found:
        print(f)
    print(f"checkov: {len(found)} finding(s) over {count} resource(s) in {len(dirs)} stack(s), "
          f"{len(skips())} check(s) skipped, {time.monotonic() - start:.1f} s")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
