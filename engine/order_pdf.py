"""The order as a PDF: Kazakh text first, then Russian, in the usual layout of an order of a
Kazakh state body (BRIEF §2): bilingual letterhead, БҰЙРЫҚ/ПРИКАЗ, date and number, place of
issue, title, preamble ending БҰЙЫРАМЫН:/ПРИКАЗЫВАЮ:, numbered points, signature block.

The fonts are DejaVu Serif and Sans (Debian's ``fonts-dejavu-core``): they carry every Kazakh
letter (ә ғ қ ң ө ұ ү һ і), which the PDF core fonts do not. The PDF's keywords carry the
register, year and sequence number, inside the signed bytes, so a verifier can find the
register's record of a file without trusting anything outside the signature.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from engine.calendar import DEPARTMENT_TZ
from engine.errors import EngineError
from engine.order_templates import DOC_TYPES, preamble_line
from engine.signing import DEPARTMENT_KK, DEPARTMENT_RU

FONT_DIR = Path(os.environ.get("QORGAU_FONT_DIR", "/usr/share/fonts/truetype/dejavu"))
KEYWORD_PREFIX = "qorgau-order"

MONTHS_KK = (
    "қаңтар", "ақпан", "наурыз", "сәуір", "мамыр", "маусым",
    "шілде", "тамыз", "қыркүйек", "қазан", "қараша", "желтоқсан",
)  # fmt: skip
MONTHS_RU = (
    "января", "февраля", "марта", "апреля", "мая", "июня",
    "июля", "августа", "сентября", "октября", "ноября", "декабря",
)  # fmt: skip


class FontMissing(EngineError):
    code = "font_missing"


def date_kk(day: date) -> str:
    return f"{day.year} жылғы «{day.day:02d}» {MONTHS_KK[day.month - 1]}"


def date_ru(day: date) -> str:
    return f"«{day.day:02d}» {MONTHS_RU[day.month - 1]} {day.year} года"


@dataclass(frozen=True)
class Registration:
    """What the register gives an order at signing."""

    register_code: str
    year: int
    seq: int
    number: str
    signed_on: date

    @property
    def keywords(self) -> str:
        return f"{KEYWORD_PREFIX}:{self.register_code}:{self.year}:{self.seq}"


def parse_keywords(keywords: str | None) -> tuple[str, int, int] | None:
    """(register, year, seq) from a PDF's keywords, or None when they are not ours."""
    if not keywords:
        return None
    parts = keywords.strip().split(":")
    if len(parts) != 4 or parts[0] != KEYWORD_PREFIX:
        return None
    try:
        return parts[1], int(parts[2]), int(parts[3])
    except ValueError:
        return None


class _Document(FPDF):
    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("DejaVuSans", size=7)
        self.cell(0, 5, f"{self.page_no()}/{{nb}}", align="C")


def _fonts(pdf: FPDF) -> None:
    files = {
        ("DejaVuSerif", ""): "DejaVuSerif.ttf",
        ("DejaVuSerif", "B"): "DejaVuSerif-Bold.ttf",
        ("DejaVuSans", ""): "DejaVuSans.ttf",
    }
    for (family, style), name in files.items():
        path = FONT_DIR / name
        if not path.exists():
            raise FontMissing(f"font {name} is missing: install Debian's fonts-dejavu-core")
        pdf.add_font(family, style=style, fname=str(path))


@dataclass(frozen=True)
class SignatureMark:
    """What the visible mark of an electronic signature says under the signer's name.

    The signature itself is the PAdES signature embedded in the file; the mark tells a
    reader of a printed copy that the order was signed electronically, by whom, with which
    certificate and when, and where to check it (an electronic document signed with an
    electronic digital signature stands for a signed paper one: Law of the Republic of
    Kazakhstan No. 370-II of 07.01.2003 "On electronic document and electronic digital
    signature").
    """

    signer: str
    certificate: str
    signed_at: datetime
    on_behalf_of: str | None = None


_MARK_TEXT = {
    "kk": (
        "Электрондық цифрлық қолтаңбамен қол қойылды",
        "Қол қойған",
        "{signer} ({head} атынан)",
        "Сертификат",
        "Уақыты",
        "Қостанай уақыты",
        "Түпнұсқалығын тексеру: Qorgau, /verify («Қол қойылған бұйрықты тексеру»)",
    ),
    "ru": (
        "Подписано электронной цифровой подписью",
        "Подписал",
        "{signer} (по поручению: {head})",
        "Сертификат",
        "Время",
        "время Костаная",
        "Проверка подлинности: Qorgau, /verify («Проверить подписанный приказ»)",
    ),
}


def _signature_mark(pdf: FPDF, mark: SignatureMark, lang: str) -> None:
    heading, who, behalf, cert, when, zone, check = _MARK_TEXT[lang]
    signer = mark.signer
    if mark.on_behalf_of:
        signer = behalf.format(signer=signer, head=mark.on_behalf_of)
    local = mark.signed_at.astimezone(DEPARTMENT_TZ).strftime("%d.%m.%Y %H:%M")
    lines = [f"{who}: {signer}", f"{cert}: {mark.certificate}", f"{when}: {local} ({zone})", check]
    pdf.ln(4)
    left, top, width = pdf.l_margin + pdf.epw / 2, pdf.get_y(), pdf.epw / 2
    pdf.set_x(left)
    pdf.set_font("DejaVuSans", "", 7.5)
    pdf.multi_cell(width, 4, heading.upper(), align="C", new_x=XPos.LEFT, new_y=YPos.NEXT)
    for line in lines:
        pdf.set_x(left)
        pdf.multi_cell(width, 3.8, line, align="L", new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.rect(left - 1, top - 1, width + 1, pdf.get_y() - top + 2)


def render_order(
    content: dict[str, Any],
    *,
    registration: Registration | None,
    signer_position: tuple[str, str],
    signer_name: str,
    mark: SignatureMark | None = None,
) -> bytes:
    """Render the order; without ``registration`` it is a draft (no number, marked ЖОБА/ПРОЕКТ).

    Args:
        content: the filled template (``order_templates.fill``), possibly edited.
        registration: number and date assigned at signing.
        signer_position: (Kazakh, Russian) position of the signer.
        signer_name: the signer's name as in their certificate.
        mark: the visible mark of the electronic signature about to be applied, printed
            under the signer's name on both pages.
    """
    pdf = _Document(format="A4")
    pdf.set_margins(25, 18, 15)
    pdf.set_auto_page_break(True, margin=18)
    _fonts(pdf)
    doc_kk, doc_ru = DOC_TYPES[content["doc_type"]]
    title = content["ru"]["title"]
    pdf.set_title(f"{doc_ru}: {title}")
    pdf.set_author(DEPARTMENT_RU)
    pdf.set_creator("Qorgau")
    if registration is not None:
        pdf.set_keywords(registration.keywords)
        pdf.set_subject(f"№ {registration.number} {registration.signed_on.isoformat()}")
        # The file's dates follow the registration date, so the same order renders the same.
        pdf.set_creation_date(_midnight(registration.signed_on))
    for lang in ("kk", "ru"):
        pdf.add_page()
        _letterhead(pdf)
        doc = doc_kk if lang == "kk" else doc_ru
        pdf.set_font("DejaVuSerif", "B", 13)
        pdf.cell(0, 8, doc, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_font("DejaVuSerif", size=11)
        width = pdf.epw / 2
        if registration is None:
            when, number = ("ЖОБА" if lang == "kk" else "ПРОЕКТ"), "№ ____"
        else:
            day = registration.signed_on
            when = date_kk(day) if lang == "kk" else date_ru(day)
            number = f"№ {registration.number}"
        pdf.cell(width, 7, when)
        pdf.cell(width, 7, number, align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        place = "Қостанай қ." if lang == "kk" else "г. Костанай"
        pdf.cell(0, 7, place, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(4)
        part = content[lang]
        pdf.set_font("DejaVuSerif", "B", 11)
        pdf.multi_cell(pdf.epw * 0.7, 6, part["title"], new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(4)
        pdf.set_font("DejaVuSerif", size=11)
        pdf.multi_cell(
            0, 6, "      " + preamble_line(content, lang), new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )
        pdf.ln(2)
        for i, point in enumerate(part["points"], start=1):
            pdf.multi_cell(0, 6, f"      {i}. {point}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(10)
        position = signer_position[0] if lang == "kk" else signer_position[1]
        pdf.set_font("DejaVuSerif", "B", 11)
        pdf.cell(width, 7, position)
        pdf.cell(width, 7, signer_name, align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        if mark is not None:
            _signature_mark(pdf, mark, lang)
    return bytes(pdf.output())


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _letterhead(pdf: FPDF) -> None:
    """The Department's name in Kazakh (left) and Russian (right), under a rule."""
    pdf.set_font("DejaVuSerif", "B", 9)
    width = pdf.epw / 2 - 5
    top = pdf.get_y()
    pdf.multi_cell(width, 5, DEPARTMENT_KK.upper(), align="C")
    left_end = pdf.get_y()
    pdf.set_xy(pdf.l_margin + width + 10, top)
    pdf.multi_cell(width, 5, DEPARTMENT_RU.upper(), align="C")
    pdf.set_y(max(left_end, pdf.get_y()) + 2)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + pdf.epw, pdf.get_y())
    pdf.ln(5)
