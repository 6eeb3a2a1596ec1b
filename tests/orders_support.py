"""Builders for the tests of the head's orders: people, head_order deployed, keys, orders
driven to the signing queue through the engine's services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from engine import definitions, delegations, orders, signing
from engine.clock import FixedClock
from engine.config import BPMN_DIR, FORMS_DIR
from engine.db import unit_of_work
from engine.identity import SYSTEM, Actor, actor_for, create_user
from engine.models import User
from engine.orders import OrderView
from tests.factories import make_people

CA_PASS = "department-ca-pass"  # noqa: S105 - test passphrases
PASSPHRASES = {"head": "head-passphrase", "deputy": "deputy-passphrase", "chief": "chief-pass1"}

CHILD = {
    "child_name": "Айғаным Өмірбекқызы Құрманова",
    "child_iin": "190515600016",
    "child_birth_date": "15.05.2019",
    "guardian_name": "Гүлнұр Һадиқызы Ісмағұлова",
    "guardian_iin": "850101400011",
    "application_date": "02.03.2026",
}


@dataclass
class OrderWorld:
    sessions: sessionmaker[Session]
    clock: FixedClock
    people: dict[str, Actor]
    keys: Path

    @classmethod
    def create(cls, sessions: sessionmaker[Session], clock: FixedClock, keys: Path) -> OrderWorld:
        people = make_people(sessions, clock)
        with unit_of_work(sessions) as session:
            extra = {
                "deputy": (["deputy_head"], "Сәкен Дәулетұлы Жүніс"),
                # A head who is also a specialist: may draft, so must never sign their own.
                "chief": (["specialist", "head"], "Мұхтар Әбенұлы Қалиев"),
            }
            for username, (roles, full_name) in extra.items():
                user = create_user(
                    session,
                    username=username,
                    password="correct horse battery",  # noqa: S106
                    full_name=full_name,
                    roles=roles,
                    now=clock.now(),
                )
                people[username] = actor_for(user)
        bundle = definitions.read_paths([BPMN_DIR / "head_order.bpmn"], forms_dir=FORMS_DIR)
        with unit_of_work(sessions) as session:
            definitions.deploy(session, bundle, actor=SYSTEM, now=clock.now())
        signing.create_ca(passphrase=CA_PASS, folder=keys)
        names = {
            "head": "Әлия Нұрланқызы Сәрсенова",
            "deputy": "Сәкен Дәулетұлы Жүніс",
            "chief": "Мұхтар Әбенұлы Қалиев",
        }
        for username, full_name in names.items():
            signing.issue_signer_key(
                username=username,
                full_name=full_name,
                ca_passphrase=CA_PASS,
                passphrase=PASSPHRASES[username],
                folder=keys,
            )
        return cls(sessions, clock, people, keys)

    def signer(self, username: str) -> signing.KeySigner:
        return signing.open_signer(username, PASSPHRASES[username], self.keys)

    def draft(
        self, who: str = "aigul", template: str = "guardianship.establish", **data: Any
    ) -> OrderView:
        with unit_of_work(self.sessions) as s:
            return orders.start_order(
                s,
                actor=self.people[who],
                template=template,
                data={**CHILD, **data},
                clock=self.clock,
            )

    def to_queue(self, who: str = "aigul", **data: Any) -> OrderView:
        """A draft submitted and approved by the lawyer: in the head's signing queue."""
        view = self.draft(who, **data)
        with unit_of_work(self.sessions) as s:
            orders.submit_order(s, order_id=view.id, actor=self.people[who], clock=self.clock)
        with unit_of_work(self.sessions) as s:
            return orders.review_order(
                s,
                order_id=view.id,
                actor=self.people["maria"],
                decision="approve",
                clock=self.clock,
            )

    def delegate(self, starts_on: date, ends_on: date) -> str:
        """The head lets the deputy sign from ``starts_on`` to ``ends_on``; the head's name."""
        with unit_of_work(self.sessions) as s:
            delegations.grant_delegation(
                s,
                actor=self.people["head"],
                deputy="deputy",
                starts_on=starts_on,
                ends_on=ends_on,
                now=self.clock.now(),
            )
            head = s.get(User, self.people["head"].user_id)
            assert head is not None
            return head.full_name

    def sign(self, order_ids: list[int], who: str = "head") -> list[OrderView]:
        with unit_of_work(self.sessions) as s:
            return orders.sign_orders(
                s,
                order_ids=order_ids,
                actor=self.people[who],
                signer=self.signer(who),
                clock=self.clock,
            )

    def verify(self, data: bytes) -> orders.Verification:
        with unit_of_work(self.sessions) as s:
            return orders.verify_order_pdf(
                s, data=data, trust_roots=[signing.load_ca_certificate(self.keys)]
            )

    def pdf(self, order_id: int) -> bytes:
        with unit_of_work(self.sessions) as s:
            return orders.order_pdf(s, order_id=order_id)
