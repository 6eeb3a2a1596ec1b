"""Bilingual templates of the head's orders, certificates and powers of attorney.

Kazakh comes first, Russian after it (Constitution Art. 7; Law "On languages"; BRIEF §2).
Each template gives, per language, the title, the preamble (legal basis, ending
"БҰЙЫРАМЫН:" / "ПРИКАЗЫВАЮ:" for orders) and the numbered operative points; the control and
entry-into-force clauses are added to every order. Placeholders such as ``{child_name}`` are
filled from case data. Templates are versioned in the database (``ensure_templates``): an
edit here becomes a new version at the next draft, and every order keeps its version.
"""

from __future__ import annotations

import hashlib
import json
import string
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import FieldError, NotFound, ValidationFailed
from engine.models.orders import OrderRegister, OrderTemplate

REGISTERS: dict[str, tuple[str, str, str]] = {
    # code: (Kazakh, Russian, default pattern). {seq} restarts every calendar year (BRIEF §2).
    "core": ("Негізгі қызмет бойынша", "По основной деятельности", "{seq}"),
    "personnel": ("Жеке құрам бойынша", "По личному составу", "{seq}-ж/қ"),
}

DOC_TYPES = {
    "order": ("БҰЙРЫҚ", "ПРИКАЗ"),
    "certificate": ("АНЫҚТАМА", "СПРАВКА"),
    "power_of_attorney": ("СЕНІМХАТ", "ДОВЕРЕННОСТЬ"),
}

MARRIAGE_CODE_KK = "«Неке (ерлі-зайыптылық) және отбасы туралы» Қазақстан Республикасы Кодексіне"
MARRIAGE_CODE_RU = "Кодексом Республики Казахстан «О браке (супружестве) и семье»"
DECREE_382_KK = (
    "Қазақстан Республикасы Үкіметінің 2012 жылғы 30 наурыздағы № 382 қаулысымен бекітілген "
    "қорғаншылық және қамқоршылық жөніндегі мемлекет функцияларын жүзеге асыру қағидаларына"
)
DECREE_382_RU = (
    "Правилами осуществления функций государства по опеке и попечительству, утверждёнными "
    "постановлением Правительства Республики Казахстан от 30 марта 2012 года № 382"
)
APPEAL_KK = (
    "Өтініш берушіге осы шешімге Қазақстан Республикасының Әкімшілік рәсімдік-процестік "
    "кодексінде белгіленген тәртіппен шағым жасалуы мүмкін екені түсіндірілсін."
)
APPEAL_RU = (
    "Разъяснить заявителю, что настоящее решение может быть обжаловано в порядке, "
    "установленном Административным процедурно-процессуальным кодексом Республики Казахстан."
)


def _tutelage(kind: str) -> dict[str, Any]:
    """Guardianship (under 14) and custody (14 to 18) differ only in their words."""
    kk, kk_person, ru, ru_gen, ru_person = {
        "guardianship": ("қорғаншылық", "қорғаншысы", "опека", "опеки", "опекуном"),
        "custody": ("қамқоршылық", "қамқоршысы", "попечительство", "попечительства", "попечителем"),
    }[kind]
    return {
        "register": "core",
        "doc_type": "order",
        "clauses": "Reg 7, 15.2, 18.9",
        "fields": [
            "child_name",
            "child_iin",
            "child_birth_date",
            "guardian_name",
            "guardian_iin",
            "application_date",
        ],
        "kk": {
            "title": f"Кәмелетке толмаған {{child_name}} үстінен {kk} белгілеу туралы",
            "preamble": (
                "{guardian_name} азаматтың (ЖСН {guardian_iin}) {application_date} берген "
                f"өтінішін қарап, {MARRIAGE_CODE_KK}, {DECREE_382_KK}, Басқарма туралы "
                "ереженің 15-тармағының 2) тармақшасына сәйкес"
            ),
            "points": [
                f"{{child_birth_date}} туған кәмелетке толмаған {{child_name}} (ЖСН {{child_iin}}) "
                f"үстінен {kk} белгіленсін.",
                f"{{guardian_name}} (ЖСН {{guardian_iin}}) кәмелетке толмаған {{child_name}} "
                f"{kk_person} болып тағайындалсын.",
                "Осы бұйрық белгіленген тәртіппен өтініш берушіге жеткізілсін.",
            ],
        },
        "ru": {
            "title": f"Об установлении {ru_gen} над несовершеннолетним(ей) {{child_name}}",
            "preamble": (
                "Рассмотрев заявление гражданина(ки) {guardian_name} (ИИН {guardian_iin}) от "
                f"{{application_date}}, в соответствии с {MARRIAGE_CODE_RU}, {DECREE_382_RU}, "
                "подпунктом 2) пункта 15 Положения об Управлении"
            ),
            "points": [
                f"Установить {ru} над несовершеннолетним(ей) {{child_name}} (ИИН {{child_iin}}), "
                "{child_birth_date} года рождения.",
                f"Назначить {{guardian_name}} (ИИН {{guardian_iin}}) {ru_person} "
                "несовершеннолетнего(ей) {child_name}.",
                "Довести настоящий приказ до сведения заявителя в установленном порядке.",
            ],
        },
    }


TEMPLATES: dict[str, dict[str, Any]] = {
    "guardianship.establish": _tutelage("guardianship"),
    "custody.establish": _tutelage("custody"),
    "guardianship.refusal": {
        "register": "core",
        "doc_type": "order",
        "clauses": "Reg 7, 15.2, 18.9",
        "fields": [
            "applicant_name",
            "applicant_iin",
            "application_date",
            "child_name",
            "refusal_reason_kk",
            "refusal_reason_ru",
        ],
        "kk": {
            "title": "{applicant_name} азаматқа қорғаншылық (қамқоршылық) белгілеуден бас тарту "
            "туралы",
            "preamble": (
                "{applicant_name} азаматтың (ЖСН {applicant_iin}) {application_date} берген "
                f"өтінішін қарап, {MARRIAGE_CODE_KK}, {DECREE_382_KK} сәйкес"
            ),
            "points": [
                "{applicant_name} азаматқа кәмелетке толмаған {child_name} үстінен қорғаншылық "
                "(қамқоршылық) белгілеуден бас тартылсын. Бас тарту негізі: {refusal_reason_kk}.",
                APPEAL_KK,
            ],
        },
        "ru": {
            "title": "Об отказе гражданину(ке) {applicant_name} в установлении опеки "
            "(попечительства)",
            "preamble": (
                "Рассмотрев заявление гражданина(ки) {applicant_name} (ИИН {applicant_iin}) от "
                f"{{application_date}}, в соответствии с {MARRIAGE_CODE_RU}, {DECREE_382_RU}"
            ),
            "points": [
                "Отказать гражданину(ке) {applicant_name} в установлении опеки (попечительства) "
                "над несовершеннолетним(ей) {child_name}. Основание отказа: {refusal_reason_ru}.",
                APPEAL_RU,
            ],
        },
    },
    "adaptation_centre.placement": {
        "register": "core",
        "doc_type": "order",
        "clauses": "Reg 7, 15.4, 15.5, 18.9",
        "fields": [
            "child_name",
            "child_iin",
            "child_birth_date",
            "centre_name",
            "ground_kk",
            "ground_ru",
        ],
        "kk": {
            "title": "Кәмелетке толмаған {child_name} кәмелетке толмағандарды бейімдеу "
            "орталығына орналастыру туралы",
            "preamble": (
                "«Кәмелетке толмағандар арасындағы құқық бұзушылықтардың профилактикасы және "
                "балалардың қадағалаусыз және панасыз қалуын болғызбау туралы» Қазақстан "
                "Республикасының 2004 жылғы 9 шілдедегі № 591 Заңының 11-бабына, Басқарма туралы "
                "ереженің 15-тармағының 4) тармақшасына сәйкес"
            ),
            "points": [
                "{child_birth_date} туған кәмелетке толмаған {child_name} (ЖСН {child_iin}) "
                "{centre_name} уақытша орналастырылсын. Негізі: {ground_kk}.",
                "Орталық басшысы баланың болуына тиісті жағдай жасауды қамтамасыз етсін.",
                "Баланың ата-анасын (заңды өкілдерін) іздестіру немесе оны отбасына орналастыру "
                "жөнінде шаралар қабылдансын.",
            ],
        },
        "ru": {
            "title": "О помещении несовершеннолетнего(ей) {child_name} в центр адаптации "
            "несовершеннолетних",
            "preamble": (
                "В соответствии со статьёй 11 Закона Республики Казахстан от 9 июля 2004 года "
                "№ 591 «О профилактике правонарушений среди несовершеннолетних и предупреждении "
                "детской безнадзорности и беспризорности», подпунктом 4) пункта 15 Положения об "
                "Управлении"
            ),
            "points": [
                "Временно поместить несовершеннолетнего(ей) {child_name} (ИИН {child_iin}), "
                "{child_birth_date} года рождения, в {centre_name}. Основание: {ground_ru}.",
                "Руководителю центра обеспечить надлежащие условия пребывания ребёнка.",
                "Принять меры по розыску родителей (законных представителей) ребёнка либо по его "
                "устройству в семью.",
            ],
        },
    },
    "guest_family.placement": {
        "register": "core",
        "doc_type": "order",
        "clauses": "Reg 7, 15.11, 18.9",
        "fields": [
            "child_name",
            "child_iin",
            "institution_name",
            "host_name",
            "host_iin",
            "period_from",
            "period_to",
        ],
        "kk": {
            "title": "Кәмелетке толмаған {child_name} қонақ отбасына беру туралы",
            "preamble": (
                "«Неке (ерлі-зайыптылық) және отбасы туралы» Қазақстан Республикасы Кодексінің "
                "137-1-бабына, Қазақстан Республикасы Білім және "
                "ғылым министрінің 2016 жылғы 28 маусымдағы № 402 бұйрығымен бекітілген Қонақ "
                "отбасы туралы ережеге сәйкес"
            ),
            "points": [
                "{institution_name} тәрбиеленушісі кәмелетке толмаған {child_name} "
                "(ЖСН {child_iin}) {period_from} бастап {period_to} дейін {host_name} "
                "(ЖСН {host_iin}) қонақ отбасына берілсін.",
                "Ұйым басшысы баланы қонақ отбасына белгіленген тәртіппен берсін.",
                "Қонақ отбасы баланы {period_to} дейін ұйымға қайтарсын.",
            ],
        },
        "ru": {
            "title": "О передаче несовершеннолетнего(ей) {child_name} в гостевую семью",
            "preamble": (
                "В соответствии со статьёй 137-1 Кодекса Республики Казахстан «О браке "
                "(супружестве) и семье», Положением о гостевой семье, утверждённым приказом "
                "Министра образования и науки Республики Казахстан от 28 июня 2016 года № 402"
            ),
            "points": [
                "Передать воспитанника(цу) {institution_name} несовершеннолетнего(юю) "
                "{child_name} (ИИН {child_iin}) в гостевую семью {host_name} (ИИН {host_iin}) "
                "на период с {period_from} по {period_to}.",
                "Руководителю организации передать ребёнка в гостевую семью в установленном "
                "порядке.",
                "Гостевой семье вернуть ребёнка в организацию не позднее {period_to}.",
            ],
        },
    },
    "property.certificate": {
        "register": "core",
        "doc_type": "certificate",
        "clauses": "Reg 15.2, 15.6, 18.9",
        "fields": [
            "applicant_name",
            "child_name",
            "child_iin",
            "property_kk",
            "property_ru",
            "transaction_kk",
            "transaction_ru",
        ],
        "kk": {
            "title": "Кәмелетке толмағанның мүлкіне иелік ету үшін",
            "preamble": (
                "Қазақстан Республикасы Білім және ғылым министрінің 2020 жылғы 24 сәуірдегі "
                "№ 158 бұйрығымен бекітілген «Кәмелетке толмағандардың мүлкіне иелік ету үшін "
                "анықтамалар беру» мемлекеттік көрсетілетін қызмет қағидаларына сәйкес"
            ),
            "points": [
                "Қорғаншы және қамқоршы органы кәмелетке толмаған {child_name} "
                "(ЖСН {child_iin}) тиесілі мүлікке: {property_kk} қатысты {transaction_kk} "
                "келісім береді.",
                "Анықтама {applicant_name} азаматқа нотариусқа (банкке) ұсыну үшін берілді.",
            ],
        },
        "ru": {
            "title": "Для распоряжения имуществом несовершеннолетнего",
            "preamble": (
                "В соответствии с Правилами оказания государственной услуги «Выдача справок для "
                "распоряжения имуществом несовершеннолетних», утверждёнными приказом Министра "
                "образования и науки Республики Казахстан от 24 апреля 2020 года № 158"
            ),
            "points": [
                "Орган, осуществляющий функции по опеке и попечительству, даёт согласие на "
                "{transaction_ru} в отношении имущества, принадлежащего несовершеннолетнему(ей) "
                "{child_name} (ИИН {child_iin}): {property_ru}.",
                "Справка выдана гражданину(ке) {applicant_name} для представления нотариусу "
                "(в банк).",
            ],
        },
    },
    "power_of_attorney": {
        "register": "core",
        "doc_type": "power_of_attorney",
        "clauses": "Reg 18.2, 18.10",
        "fields": ["attorney_name", "attorney_iin", "scope_kk", "scope_ru", "valid_until"],
        "kk": {
            "title": "Басқарманың мүддесін білдіру туралы",
            "preamble": "Басқарма туралы ереженің 18-тармағының 10) тармақшасына сәйкес",
            "points": [
                "Басқарма {attorney_name} (ЖСН {attorney_iin}) азаматқа {scope_kk} Басқарманың "
                "атынан өкілдік етуге сенім білдіреді.",
                "Сенімхат {valid_until} дейін жарамды.",
                "Өкілеттіктер басқа тұлғаға сенім бойынша берілмейді.",
            ],
        },
        "ru": {
            "title": "О представлении интересов Управления",
            "preamble": "В соответствии с подпунктом 10) пункта 18 Положения об Управлении",
            "points": [
                "Управление уполномочивает {attorney_name} (ИИН {attorney_iin}) представлять "
                "интересы Управления {scope_ru}.",
                "Доверенность действительна до {valid_until}.",
                "Доверенность выдана без права передоверия.",
            ],
        },
    },
}

CONTROL_KK = "Осы бұйрықтың орындалуын бақылау {controller_kk} жүктелсін."
CONTROL_RU = "Контроль за исполнением настоящего приказа возложить на {controller_ru}."
ENTRY_KK = "Осы бұйрық қол қойылған күнінен бастап қолданысқа енгізіледі."
ENTRY_RU = "Настоящий приказ вводится в действие со дня его подписания."
DEFAULTS = {"controller_kk": "басшының орынбасарына", "controller_ru": "заместителя руководителя"}


def template_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, ensure_ascii=False).encode("utf-8")
    ).hexdigest()


def ensure_registers(session: Session) -> None:
    """Create the registers if missing (idempotent; a changed pattern is kept)."""
    existing = set(session.scalars(select(OrderRegister.code)))
    for code, (kk, ru, pattern) in REGISTERS.items():
        if code not in existing:
            session.add(OrderRegister(code=code, name_kk=kk, name_ru=ru, pattern=pattern))
    session.flush()


def ensure_templates(session: Session, now: datetime) -> None:
    """Store each template as a new version when its text differs from the latest one."""
    ensure_registers(session)
    latest: dict[str, OrderTemplate] = {}
    for row in session.scalars(select(OrderTemplate).order_by(OrderTemplate.version)):
        latest[row.code] = row
    for code, body in TEMPLATES.items():
        digest = template_hash(body)
        current = latest.get(code)
        if current is not None and current.content_hash == digest:
            continue
        session.add(
            OrderTemplate(
                code=code,
                version=(current.version + 1) if current else 1,
                register_code=body["register"],
                body=body,
                content_hash=digest,
                created_at=now,
            )
        )
    session.flush()


def latest_template(session: Session, code: str) -> OrderTemplate:
    row = session.scalars(
        select(OrderTemplate)
        .where(OrderTemplate.code == code)
        .order_by(OrderTemplate.version.desc())
        .limit(1)
    ).first()
    if row is None:
        raise NotFound(f"no order template {code!r}; known: {', '.join(sorted(TEMPLATES))}")
    return row


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def fill(body: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """The template's text in both languages, filled from ``data`` (case data).

    Raises:
        ValidationFailed: naming every field the template needs and ``data`` lacks.
    """
    values = {**DEFAULTS, **{k: str(v).strip() for k, v in data.items() if v is not None}}
    missing = [f for f in body["fields"] if not values.get(f)]
    needed = set()
    for lang in ("kk", "ru"):
        part = body[lang]
        for text in [part["title"], part["preamble"], *part["points"]]:
            needed |= _placeholders(text)
    missing += sorted(n for n in needed if n not in values and n not in missing)
    if missing:
        raise ValidationFailed(
            "the case lacks data the template needs",
            [FieldError(name, "required") for name in missing],
        )
    content: dict[str, Any] = {"doc_type": body["doc_type"], "clauses": body["clauses"]}
    for lang, control, entry in (("kk", CONTROL_KK, ENTRY_KK), ("ru", CONTROL_RU, ENTRY_RU)):
        part = body[lang]
        points = [p.format_map(values) for p in part["points"]]
        if body["doc_type"] == "order":
            points += [control.format_map(values), entry]
        content[lang] = {
            "title": part["title"].format_map(values),
            "preamble": part["preamble"].format_map(values),
            "points": points,
        }
    return content


def preamble_line(content: dict[str, Any], lang: str) -> str:
    """The preamble, ending "БҰЙЫРАМЫН:" / "ПРИКАЗЫВАЮ:" in an order (BRIEF §2)."""
    preamble = content[lang]["preamble"]
    if content["doc_type"] != "order":
        return preamble + ":"
    return f"{preamble} {'БҰЙЫРАМЫН' if lang == 'kk' else 'ПРИКАЗЫВАЮ'}:"


def as_text(content: dict[str, Any], lang: str) -> str:
    """The order's text in one language, as the head_order process keeps it."""
    part = content[lang]
    lines = [part["title"], "", preamble_line(content, lang)]
    lines += [f"{i}. {p}" for i, p in enumerate(part["points"], start=1)]
    return "\n".join(lines)
