"""Documents of a case: uploads checked by their bytes, stored with a hash, never in task data.

The type of an upload is decided by its content (magic numbers), not by its name or by what
the browser claims: an ``.exe`` renamed ``.pdf`` starts with ``MZ`` and is refused. The name
must also agree with the content, so a saved file opens in the program its name promises.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.cases import append_case_event, flush_case, readable_case, writable_case
from engine.clock import SYSTEM_CLOCK, Clock
from engine.errors import FieldError, NotFound, ValidationFailed
from engine.identity import Actor
from engine.models import User
from engine.models.cases import CaseDocument

MAX_DOCUMENT_BYTES = 10 * 2**20
"""Largest upload: a scanned multi-page statement is a few megabytes."""

# content type -> the file name endings that may carry it
ALLOWED_TYPES: dict[str, tuple[str, ...]] = {
    "application/pdf": (".pdf",),
    "image/png": (".png",),
    "image/jpeg": (".jpg", ".jpeg"),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (".docx",),
}
ALLOWED_NAMES = "PDF, PNG, JPEG or DOCX"

_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")


@dataclass(frozen=True)
class DocumentView:
    id: int
    case_id: int
    file_name: str
    content_type: str
    size: int
    sha256: str
    uploaded_by: str
    uploaded_at: datetime


def sniff(content: bytes) -> str | None:
    """The content type the bytes really are, among the allowed ones; None otherwise."""
    if content.startswith(b"%PDF-"):
        return "application/pdf"
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if content.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if content.startswith(b"PK\x03\x04"):
        # Every Office file is a ZIP; a Word document has this part (ECMA-376 Part 2).
        try:
            with zipfile.ZipFile(io.BytesIO(content)) as archive:
                names = set(archive.namelist())
        except (zipfile.BadZipFile, ValueError):
            return None
        if "[Content_Types].xml" in names and "word/document.xml" in names:
            return "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    return None


def _describe(content: bytes) -> str:
    if content.startswith(b"MZ"):
        return "a Windows program"
    if content.startswith(b"\x7fELF"):
        return "a Linux program"
    if content[:5].lower() in (b"<html", b"<!doc", b"<svg ", b"<?xml"):
        return "markup (HTML/SVG/XML)"
    return "an unknown format"


def clean_file_name(name: str) -> str:
    """The last path segment of ``name`` without control characters, at most 255 long."""
    base = re.split(r"[/\\]", name or "")[-1]
    base = _UNSAFE_NAME.sub("", base).strip().strip(".")
    return base[-255:]


def upload_document(
    session: Session,
    *,
    case_id: int,
    actor: Actor,
    file_name: str,
    content: bytes,
    clock: Clock | None = None,
    max_bytes: int = MAX_DOCUMENT_BYTES,
) -> DocumentView:
    """Store a document for a case after checking its size and real type.

    Raises:
        Forbidden: the actor may not change this case.
        ValidationFailed: empty, too large, a type other than PDF/PNG/JPEG/DOCX, or a name
            whose ending does not match the content.
    """
    row = writable_case(session, case_id, actor)
    name = clean_file_name(file_name)
    errors: list[FieldError] = []
    if not name:
        errors.append(FieldError("file", "the file needs a name"))
    if not content:
        errors.append(FieldError("file", "the file is empty"))
    elif len(content) > max_bytes:
        errors.append(
            FieldError(
                "file", f"the file is larger than {max_bytes // 2**20} MB ({len(content)} bytes)"
            )
        )
    else:
        kind = sniff(content)
        if kind is None:
            errors.append(
                FieldError(
                    "file",
                    f"only {ALLOWED_NAMES} documents are accepted; "
                    f"this file's content is {_describe(content)}",
                )
            )
        elif name and not name.lower().endswith(ALLOWED_TYPES[kind]):
            errors.append(
                FieldError(
                    "file",
                    f"the file's name does not match its content ({kind}); "
                    f"expected a name ending in {' or '.join(ALLOWED_TYPES[kind])}",
                )
            )
    if errors:
        raise ValidationFailed("the document was refused", errors)
    now = (clock or SYSTEM_CLOCK).now()
    digest = hashlib.sha256(content).hexdigest()
    document = CaseDocument(
        case_id=row.id,
        file_name=name,
        content_type=kind,
        size=len(content),
        sha256=digest,
        content=content,
        uploaded_by_id=actor.user_id,
        uploaded_at=now,
    )
    session.add(document)
    session.flush()
    append_case_event(
        session,
        row,
        actor,
        "case.document_uploaded",
        {"document_id": document.id, "file_name": name, "sha256": digest, "size": len(content)},
        now,
    )
    flush_case(session, row.number)
    return _view(document, actor.username)


def _view(row: CaseDocument, uploader: str) -> DocumentView:
    return DocumentView(
        id=row.id,
        case_id=row.case_id,
        file_name=row.file_name,
        content_type=row.content_type,
        size=row.size,
        sha256=row.sha256,
        uploaded_by=uploader,
        uploaded_at=row.uploaded_at,
    )


def case_documents(session: Session, *, case_id: int, actor: Actor) -> list[DocumentView]:
    readable_case(session, case_id, actor)
    rows = session.execute(
        select(CaseDocument, User.full_name)
        .outerjoin(User, User.id == CaseDocument.uploaded_by_id)
        .where(CaseDocument.case_id == case_id)
        .order_by(CaseDocument.id)
    )
    return [_view(doc, name or "?") for doc, name in rows]


def read_document(
    session: Session, *, case_id: int, document_id: int, actor: Actor
) -> tuple[DocumentView, bytes]:
    """A document and its bytes, for a download by someone who may see the case."""
    readable_case(session, case_id, actor)
    row = session.get(CaseDocument, document_id)
    if row is None or row.case_id != case_id:
        raise NotFound(f"document {document_id} is not in case {case_id}")
    uploader = session.get(User, row.uploaded_by_id) if row.uploaded_by_id else None
    return _view(row, uploader.full_name if uploader else "?"), row.content
