"""tools/ingest.py sources: a folder and an S3 prefix (boto3 against moto's S3), both keeping
only the file types the gateway chunks. The load itself is tested against the local app in
tests/e2e/test_ingest.py."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from tools.ingest import local_files, main, s3_files


def test_folder_lists_supported_files_in_order(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.md").write_text("# b")
    (tmp_path / "sub" / "a.txt").write_text("a")
    (tmp_path / "c.PDF").write_bytes(b"%PDF-1.4")
    (tmp_path / "skip.png").write_bytes(b"\x89PNG")
    got = [(f.source, f.name, f.read()) for f in local_files(tmp_path)]
    assert got == [("b.md", "b.md", b"# b"), ("c.PDF", "c.PDF", b"%PDF-1.4"),
                   ("sub/a.txt", "a.txt", b"a")]


def test_s3_prefix_lists_and_reads_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="docs")
        for key in ("manuals/x.md", "manuals/deep/y.txt", "manuals/z.bin", "other/w.md"):
            s3.put_object(Bucket="docs", Key=key, Body=key.encode())
        got = {f.source: (f.name, f.read()) for f in s3_files("s3://docs/manuals/", s3)}
    assert got == {"s3://docs/manuals/x.md": ("x.md", b"manuals/x.md"),
                   "s3://docs/manuals/deep/y.txt": ("y.txt", b"manuals/deep/y.txt")}


def test_cli_needs_url_and_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path), "--store", "s"])
    assert exc.value.code == 2
