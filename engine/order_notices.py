"""Who hears about an order and what they read (Reg 7: the applicant or the next step is told).

Two moments of ``head_order``:

* **signed and registered** (``sign_orders``): the order's author learns its number and
  that the ``publish`` step is theirs now;
* **delivered** (``notify_order``): the author and whoever started the order's process (when
  that is someone else) learn to whom the order went and how.

Each notice is one in-app notification per person (kind ``order``), tied to the head_order
task it follows, so ``notifications.notify`` never repeats it for that step, and left
``pending`` for the e-mail outbox. A notification row holds one text whatever its reader's
language, so the text is Kazakh first, then Russian, as the order itself is.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import notifications
from engine.identity import Actor
from engine.models import ProcessInstance, User
from engine.models.orders import Order

KIND = "order"
# The labels of head_order's publish form (forms/order/publish.json), Kazakh and Russian.
DELIVERY = {
    "notified": ("Мүдделі тұлғаларға хабарланды", "Доведён до заинтересованных лиц"),
    "published": ("Интернет-ресурста жарияланды", "Опубликован на интернет-ресурсе"),
    "notified_and_published": ("Хабарланды және жарияланды", "Доведён и опубликован"),
}


def _active(session: Session, user_ids: Iterable[int | None]) -> list[int]:
    wanted = {u for u in user_ids if u is not None}
    if not wanted:
        return []
    return sorted(
        session.scalars(select(User.id).where(User.id.in_(wanted), User.is_active.is_(True)))
    )


def _name(session: Session, user_id: int | None) -> str:
    user = session.get(User, user_id) if user_id is not None else None
    if user is None:
        return "?"
    return user.full_name or user.username


def _headings(row: Order) -> tuple[str, str]:
    day = f"{row.signed_on:%d.%m.%Y}" if row.signed_on else ""
    return (
        f"Бұйрық № {row.number}, {day}: «{row.content['kk']['title']}».",
        f"Приказ № {row.number} от {day}: «{row.content['ru']['title']}».",
    )


def tell_signed(session: Session, *, row: Order, task_id: int, now: datetime) -> list[int]:
    """Tell the author of ``row``, just signed and registered, its number.

    Args:
        task_id: the head_order ``sign`` task the signing completed.

    Returns:
        The ids of the users notified now.
    """
    kk, ru = _headings(row)
    signer = _name(session, row.signed_by_id)
    if row.on_behalf_of_id is not None:
        head = _name(session, row.on_behalf_of_id)
        kk_by = f"Қол қойған: {signer}; басшының атынан (өкілеттік бойынша): {head}."
        ru_by = f"Подписал(а): {signer}; за руководителя (по делегированию): {head}."
    else:
        kk_by, ru_by = f"Қол қойған: {signer}.", f"Подписал(а): {signer}."
    body = "\n".join(
        [
            kk,
            kk_by,
            "Бұйрықты өтініш берушіге жеткізіп, мұны жүйеде белгілеңіз.",
            "",
            ru,
            ru_by,
            "Доведите приказ до заявителя и отметьте это в системе.",
        ]
    )
    return notifications.notify(
        session,
        user_ids=_active(session, [row.drafted_by_id]),
        kind=KIND,
        title=(
            f"Бұйрық № {row.number} қол қойылып, тіркелді / "
            f"Приказ № {row.number} подписан и зарегистрирован"
        ),
        body=body,
        now=now,
        task_id=task_id,
        instance_id=row.instance_id,
    )


def tell_delivered(
    session: Session,
    *,
    row: Order,
    notified_to: str,
    delivery: str,
    by: Actor,
    task_id: int,
    now: datetime,
) -> list[int]:
    """Tell the author of ``row`` and the starter of its process to whom it was delivered.

    Args:
        notified_to: to whom the order went, as recorded on the ``publish`` step.
        delivery: how (a value of the publish form's ``order_delivery``).
        by: who recorded the delivery.
        task_id: the head_order ``publish`` task the delivery completed.

    Returns:
        The ids of the users notified now (each person once, however many roles they hold).
    """
    starter = session.scalar(
        select(ProcessInstance.started_by_id).where(ProcessInstance.id == row.instance_id)
    )
    kk, ru = _headings(row)
    how_kk, how_ru = DELIVERY.get(delivery, (delivery, delivery))
    who = _name(session, by.user_id) if by.user_id is not None else by.username
    body = "\n".join(
        [
            kk,
            f"{how_kk}. Кімге хабарланды: {notified_to}.",
            f"Белгілеген: {who}.",
            "",
            ru,
            f"{how_ru}. Кому доведён: {notified_to}.",
            f"Отметил(а): {who}.",
        ]
    )
    return notifications.notify(
        session,
        user_ids=_active(session, [row.drafted_by_id, starter]),
        kind=KIND,
        title=f"Бұйрық № {row.number} хабарланды / Приказ № {row.number} доведён",
        body=body,
        now=now,
        task_id=task_id,
        instance_id=row.instance_id,
    )
