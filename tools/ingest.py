"""Load a folder or an S3 prefix into a vector store, through the platform's OpenAI API.

    python -m tools.ingest ./docs --store handbook
    python -m tools.ingest s3://bucket/manuals/ --store manuals --concurrency 16

Uses the official `openai` client and nothing else of the platform: the base URL and key come
from `--base-url` / `--api-key` or OPENAI_BASE_URL / OPENAI_API_KEY, so it works against
`make local` and against a cluster alike. Per file: upload (`/v1/files`, purpose `assistants`),
attach to the store with the file's SHA-256 and source in its `attributes`, wait until the store
reports it `completed` (chunked and embedded) or `failed`.

Resumable: before it starts it lists the store's files and skips every file whose SHA-256 is
already there with status `completed`, so an interrupted run picks up where it stopped (and the
gateway itself stores one copy of identical bytes per key). The store is made if it does not
exist. Exit status 1 when any file failed; each failure is printed with its reason.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# What the gateway chunks (serve_app/rag): text, Markdown, PDF.
SUFFIXES = (".txt", ".md", ".markdown", ".pdf")
HASH_ATTRIBUTE = "sha256"
SOURCE_ATTRIBUTE = "source"


@dataclass(frozen=True)
class SourceFile:
    """One file to load: where it comes from, its name, and how to read its bytes."""

    source: str  # path or s3:// URI, stored in the attributes
    name: str
    read: Callable[[], bytes]


def local_files(root: Path) -> Iterator[SourceFile]:
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.suffix.lower() in SUFFIXES:
            yield SourceFile(str(path.relative_to(root)), path.name, path.read_bytes)


def s3_files(uri: str, client: Any = None) -> Iterator[SourceFile]:
    """Every object under `s3://bucket/prefix` with a supported suffix (boto3's default
    credentials: env, profile, or the pod's role)."""
    import boto3

    s3 = client or boto3.client("s3")
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            if key.lower().endswith(SUFFIXES):
                yield SourceFile(
                    f"s3://{bucket}/{key}", key.rsplit("/", 1)[-1],
                    lambda k=key: s3.get_object(Bucket=bucket, Key=k)["Body"].read(),
                )


def sources(location: str) -> Iterator[SourceFile]:
    if location.startswith("s3://"):
        return s3_files(location)
    root = Path(location)
    if not root.is_dir():
        raise SystemExit(f"error: {location} is neither a folder nor an s3:// prefix")
    return local_files(root)


def find_or_create_store(client: Any, name: str) -> str:
    for store in client.vector_stores.list(limit=100):
        if store.name == name:
            return str(store.id)
    return str(client.vector_stores.create(name=name).id)


def stored_hashes(client: Any, store_id: str) -> set[str]:
    """SHA-256s of the store's completed files (what a resumed run may skip)."""
    done: set[str] = set()
    for f in client.vector_stores.files.list(vector_store_id=store_id, limit=100):
        digest = (f.attributes or {}).get(HASH_ATTRIBUTE)
        if f.status == "completed" and isinstance(digest, str):
            done.add(digest)
    return done


@dataclass(frozen=True)
class Outcome:
    source: str
    status: str  # completed | failed | skipped
    detail: str = ""


def load_one(client: Any, store_id: str, item: SourceFile, done: set[str],
             max_wait_s: float = 600) -> Outcome:
    """Upload one file and attach it (the client's create_and_poll waits for the store to
    finish chunking and embedding it). Errors come back as a failed Outcome, not raised."""
    try:
        data = item.read()
        digest = hashlib.sha256(data).hexdigest()
        if digest in done:
            return Outcome(item.source, "skipped", "already stored")
        uploaded = client.files.create(file=(item.name, data), purpose="assistants")
        vs_file = client.vector_stores.files.create_and_poll(
            uploaded.id, vector_store_id=store_id, max_wait_seconds=max_wait_s,
            attributes={HASH_ATTRIBUTE: digest, SOURCE_ATTRIBUTE: item.source[:512]},
        )
    except Exception as exc:  # one file's error must not stop the others
        return Outcome(item.source, "failed", f"{type(exc).__name__}: {exc}")
    if vs_file.status == "completed":
        done.add(digest)
        return Outcome(item.source, "completed")
    error = getattr(vs_file, "last_error", None)
    return Outcome(item.source, "failed",
                   getattr(error, "message", None) or f"status {vs_file.status}")


def ingest(client: Any, location: str, store: str, concurrency: int = 4,
           progress: bool = True) -> list[Outcome]:
    """Load every supported file under `location` into the store named `store`."""
    from tqdm import tqdm

    store_id = find_or_create_store(client, store)
    done = stored_hashes(client, store_id)
    items = list(sources(location))
    outcomes: list[Outcome] = []
    with ThreadPoolExecutor(max_workers=concurrency) as pool, \
            tqdm(total=len(items), unit="file", disable=not progress, desc=store) as bar:
        futures = [pool.submit(load_one, client, store_id, item, done) for item in items]
        for fut in as_completed(futures):
            outcomes.append(fut.result())
            bar.update(1)
            bar.set_postfix(failed=sum(o.status == "failed" for o in outcomes))
    return outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.ingest", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("location", help="a folder or an s3://bucket/prefix")
    parser.add_argument("--store", required=True, help="vector store name (made if missing)")
    parser.add_argument("--base-url", default=os.environ.get("OPENAI_BASE_URL"),
                        help="the platform's /v1 URL (default: $OPENAI_BASE_URL)")
    parser.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY"),
                        help="API key (default: $OPENAI_API_KEY)")
    parser.add_argument("--concurrency", type=int, default=4,
                        help="files in flight at once (default 4)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if not args.base_url or not args.api_key:
        parser.error("set --base-url and --api-key (or OPENAI_BASE_URL and OPENAI_API_KEY)")
    if args.concurrency < 1:
        parser.error("--concurrency must be at least 1")

    import openai

    client = openai.OpenAI(base_url=args.base_url, api_key=args.api_key, max_retries=3)
    outcomes = ingest(client, args.location, args.store, args.concurrency,
                      progress=not args.no_progress)
    counts = {s: sum(o.status == s for o in outcomes) for s in ("completed", "skipped", "failed")}
    for o in outcomes:
        if o.status == "failed":
            print(f"failed: {o.source}: {o.detail}", file=sys.stderr)
    print(f"{args.store}: {counts['completed']} loaded, {counts['skipped']} already stored, "
          f"{counts['failed']} failed")
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
