"""File bytes -> text: plain text, Markdown and PDF (pypdf). Anything else is refused up front.

The file type comes from the name's extension and is checked against the content (a `.pdf`
must start with `%PDF-`, text must be UTF-8), so a mislabelled upload fails with a clear 400.
"""

from __future__ import annotations

import io
from pathlib import PurePosixPath

from serve_app.errors import GatewayError

TEXT_TYPES = {".txt": "text", ".text": "text", ".md": "markdown", ".markdown": "markdown"}
PDF_TYPES = {".pdf": "pdf"}
SUPPORTED = {**TEXT_TYPES, **PDF_TYPES}


def file_kind(filename: str) -> str:
    """"text", "markdown" or "pdf" from the extension; 400 naming `file` otherwise."""
    ext = PurePosixPath(filename).suffix.lower()
    kind = SUPPORTED.get(ext)
    if kind is None:
        raise GatewayError(
            400,
            f"Unsupported file type {ext or '(no extension)'!r} for {filename!r}; supported:"
            f" {', '.join(sorted(SUPPORTED))}.",
            param="file",
            code="unsupported_file",
        )
    return kind


def check_upload(filename: str, data: bytes) -> str:
    """Validate an upload before it is stored: known type, not empty, content matches type."""
    kind = file_kind(filename)
    if not data:
        raise GatewayError(400, f"File {filename!r} is empty.", param="file", code="empty_file")
    if kind == "pdf":
        if not data.startswith(b"%PDF-"):
            raise GatewayError(
                400, f"File {filename!r} is not a PDF (no %PDF- header).", param="file",
                code="invalid_file",
            )
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise GatewayError(
                400, f"File {filename!r} is not UTF-8 text ({exc.reason} at byte {exc.start}).",
                param="file", code="invalid_file",
            ) from exc
        if not text.strip():
            raise GatewayError(
                400, f"File {filename!r} has no text.", param="file", code="empty_file"
            )
    return kind


def extract_text(filename: str, data: bytes) -> str:
    """The file's text (PDF: every page's text, pages separated by blank lines)."""
    kind = check_upload(filename, data)
    if kind != "pdf":
        return data.decode("utf-8")
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PyPdfError, ValueError, KeyError) as exc:
        raise GatewayError(
            400, f"File {filename!r} could not be read as PDF: {exc}", param="file",
            code="invalid_file",
        ) from exc
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    if not text:
        raise GatewayError(
            400, f"PDF {filename!r} has no extractable text (scanned images are not OCR'd).",
            param="file", code="empty_file",
        )
    return text
