"""Tables of the analysts' studio: drafts of process definitions being edited."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from engine.models.base import Base


class StudioDraft(Base):
    """A process definition an analyst is editing: not executable until deployed.

    A draft holds the files as edited (one BPMN document, the DMN documents it uses, the
    forms and the deadline rules) and what the last check found missing, so that a diagram
    drawn elsewhere can be kept and finished later. Deploying it creates an immutable
    ``ProcessVersion``; the draft itself is never executed.
    """

    __tablename__ = "studio_draft"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(255))
    # The executable process the BPMN defines, once known (None while it cannot be parsed).
    process_key: Mapped[str | None] = mapped_column(String(255), index=True)
    # The version it was opened from, if any: the base of its diff.
    base_version_id: Mapped[int | None] = mapped_column(ForeignKey("process_version.id"))
    bpmn_name: Mapped[str] = mapped_column(String(255))
    bpmn_xml: Mapped[str] = mapped_column(Text)
    dmn_files: Mapped[dict] = mapped_column(default=dict)  # file name -> XML text
    forms: Mapped[dict] = mapped_column(default=dict)  # form key -> JSON Schema
    rules_yaml: Mapped[str] = mapped_column(Text, default="")
    # What the last check found: [{"file", "line", "element_id", "message"}].
    lacks: Mapped[list] = mapped_column(default=list)
    # draft | deployed
    status: Mapped[str] = mapped_column(String(16), default="draft")
    deployed_version_id: Mapped[int | None] = mapped_column(ForeignKey("process_version.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    created_at: Mapped[datetime]
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    updated_at: Mapped[datetime]
    revision: Mapped[int] = mapped_column(Integer, default=1)

    # Two analysts saving the same draft: the second save is refused, not merged silently.
    __mapper_args__ = {"version_id_col": revision}
