"""The Department's keys and PAdES signatures on PDFs.

A Department certificate authority (CA) issues every signer a key pair and certificate of
their own; the private keys are stored encrypted with a passphrase that only their holder
knows and that is never written anywhere. Signing and verification go through pyHanko:
a PAdES B-B signature (ETSI EN 319 142-1) embedded in the PDF, over its exact bytes.

The ``Signer`` protocol is the seam for Kazakhstan's national signature: an NCALayer adapter
(GOST keys of the National Certification Authority, pki.gov.kz) only has to implement
``holder``, ``subject`` and ``sign_pdf`` (BRIEF §2, EDS Law Art. 7).

Layout of the key folder (``QORGAU_KEYS_DIR``, default ``var/keys``; git-ignored)::

    ca/ca.key.pem   ca/ca.cert.pem             the Department CA
    signers/<username>.key.pem / .cert.pem    one pair per signer
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Protocol, TypeVar

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from engine.config import VAR_DIR
from engine.errors import EngineError, FieldError, NotFound, ValidationFailed

DEPARTMENT_KK = "Қостанай облысы әкімдігінің балалардың құқықтарын қорғау басқармасы"
DEPARTMENT_RU = "Управление по защите прав детей акимата Костанайской области"
MIN_PASSPHRASE = 8


class KeyUnavailable(EngineError):
    """A key could not be created or opened (wrong passphrase, missing file)."""

    code = "key_error"


T = TypeVar("T")


def _run(make: Callable[[], Awaitable[T]]) -> T:
    """Run one of pyHanko's coroutines to completion from synchronous code.

    pyHanko's synchronous wrappers fail in a thread whose event loop is already running (an
    async server, a test driving a browser); there the coroutine runs on a thread of its own.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())  # type: ignore[arg-type]
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()  # type: ignore[arg-type]


def keys_dir() -> Path:
    """The key folder: ``QORGAU_KEYS_DIR`` or ``var/keys``."""
    return Path(os.environ.get("QORGAU_KEYS_DIR", VAR_DIR / "keys"))


class Signer(Protocol):
    """Signs a PDF on behalf of one person. Implementations: ``KeySigner`` (the Department
    CA's keys); later an NCALayer adapter with the national GOST keys."""

    @property
    def holder(self) -> str:
        """The username the key belongs to (checked against the acting user)."""
        ...

    @property
    def subject(self) -> str:
        """The signer's name as the certificate states it."""
        ...

    @property
    def certificate(self) -> str:
        """The signing certificate as people cite it: serial number (hex) and issuer."""
        ...

    def sign_pdf(self, pdf: bytes, *, reason: str, location: str) -> bytes:
        """Return ``pdf`` with an embedded PAdES signature."""
        ...


# --- files ------------------------------------------------------------------------------


def _check_passphrase(passphrase: str) -> None:
    if len(passphrase) < MIN_PASSPHRASE:
        raise ValidationFailed(
            "the passphrase is too short",
            [FieldError("passphrase", f"at least {MIN_PASSPHRASE} characters")],
        )


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey, passphrase: str) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase.encode("utf-8")),
    )


def _load_key(path: Path, passphrase: str) -> ec.EllipticCurvePrivateKey:
    if not path.exists():
        raise NotFound(f"no key at {path.name}")
    try:
        key = serialization.load_pem_private_key(
            path.read_bytes(), password=passphrase.encode("utf-8")
        )
    except (ValueError, TypeError) as exc:
        raise KeyUnavailable("the passphrase does not open this key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise KeyUnavailable("unsupported key type")
    return key


def ca_paths(folder: Path | None = None) -> tuple[Path, Path]:
    base = (folder or keys_dir()) / "ca"
    return base / "ca.key.pem", base / "ca.cert.pem"


def signer_paths(username: str, folder: Path | None = None) -> tuple[Path, Path]:
    if not username.replace("_", "").replace("-", "").replace(".", "").isalnum():
        raise ValidationFailed("bad username", [FieldError("username", "letters and digits")])
    base = (folder or keys_dir()) / "signers"
    return base / f"{username}.key.pem", base / f"{username}.cert.pem"


def load_ca_certificate(folder: Path | None = None) -> x509.Certificate:
    """The Department CA's certificate: the trust root of every verification."""
    _, cert_path = ca_paths(folder)
    if not cert_path.exists():
        raise NotFound("the Department CA has not been created (qorgau keys init-ca)")
    return x509.load_pem_x509_certificate(cert_path.read_bytes())


# --- the CA -----------------------------------------------------------------------------


def create_ca(
    *, passphrase: str, folder: Path | None = None, now: datetime | None = None, years: int = 10
) -> x509.Certificate:
    """Create the Department CA (EC P-256); refuses to overwrite an existing one."""
    _check_passphrase(passphrase)
    key_path, cert_path = ca_paths(folder)
    if key_path.exists() or cert_path.exists():
        raise ValidationFailed("exists", [FieldError("ca", "the Department CA already exists")])
    now = now or datetime.now(UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "KZ"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, DEPARTMENT_RU),
            x509.NameAttribute(NameOID.COMMON_NAME, "Qorgau Department CA"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365 * years))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(key_path, _key_pem(key, passphrase))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert


@dataclass(frozen=True)
class IssuedKey:
    username: str
    subject: str
    serial: int
    not_after: datetime


def issue_signer_key(
    *,
    username: str,
    full_name: str,
    ca_passphrase: str,
    passphrase: str,
    folder: Path | None = None,
    now: datetime | None = None,
    days: int = 365,
) -> IssuedKey:
    """Issue ``username`` a signing key and certificate from the Department CA.

    The certificate names the person (CN) and carries the username (UID) that signing checks
    against the acting user. File certificates of the national CA last one year (BRIEF §2);
    so do ours by default. Re-issuing replaces the previous pair.
    """
    _check_passphrase(passphrase)
    ca_key_path, _ = ca_paths(folder)
    ca_key = _load_key(ca_key_path, ca_passphrase)
    ca_cert = load_ca_certificate(folder)
    now = now or datetime.now(UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "KZ"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, DEPARTMENT_RU),
            x509.NameAttribute(NameOID.COMMON_NAME, full_name),
            x509.NameAttribute(NameOID.USER_ID, username),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key_path, cert_path = signer_paths(username, folder)
    _write_private(key_path, _key_pem(key, passphrase))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return IssuedKey(username, full_name, cert.serial_number, cert.not_valid_after_utc)


def list_signer_keys(folder: Path | None = None) -> list[IssuedKey]:
    base = (folder or keys_dir()) / "signers"
    result = []
    for path in sorted(base.glob("*.cert.pem")) if base.exists() else []:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        uid = cert.subject.get_attributes_for_oid(NameOID.USER_ID)
        cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        result.append(
            IssuedKey(
                str(uid[0].value) if uid else "?",
                str(cn[0].value) if cn else "?",
                cert.serial_number,
                cert.not_valid_after_utc,
            )
        )
    return result


# --- signing ----------------------------------------------------------------------------


def _asn1_cert(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


class KeySigner:
    """A signer holding one person's key from the Department CA, opened once per batch."""

    def __init__(
        self,
        holder: str,
        key: ec.EllipticCurvePrivateKey,
        cert: x509.Certificate,
        chain: list[x509.Certificate],
    ) -> None:
        self._holder = holder
        cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        self._subject = str(cn[0].value) if cn else holder
        issuer = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
        issuer_name = str(issuer[0].value) if issuer else cert.issuer.rfc4514_string()
        self._certificate = f"{cert.serial_number:X}, {issuer_name}"
        der = key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self._signer = signers.SimpleSigner(
            signing_cert=_asn1_cert(cert),
            signing_key=asn1_keys.PrivateKeyInfo.load(der),
            cert_registry=SimpleCertificateStore.from_certs([_asn1_cert(c) for c in chain]),
        )

    @property
    def holder(self) -> str:
        return self._holder

    @property
    def subject(self) -> str:
        return self._subject

    @property
    def certificate(self) -> str:
        return self._certificate

    def sign_pdf(self, pdf: bytes, *, reason: str, location: str) -> bytes:
        meta = signers.PdfSignatureMetadata(
            field_name="Signature1",
            md_algorithm="sha256",
            subfilter=fields.SigSeedSubFilter.PADES,
            reason=reason,
            location=location,
            name=self._subject,
        )
        out = BytesIO()
        pdf_signer = signers.PdfSigner(meta, signer=self._signer)
        _run(lambda: pdf_signer.async_sign_pdf(IncrementalPdfFileWriter(BytesIO(pdf)), output=out))
        return out.getvalue()


def open_signer(username: str, passphrase: str, folder: Path | None = None) -> KeySigner:
    """Open ``username``'s key with their passphrase (asked once per batch, never stored).

    Raises:
        NotFound: no key was issued to this user.
        KeyUnavailable: the passphrase is wrong.
    """
    key_path, cert_path = signer_paths(username, folder)
    if not cert_path.exists():
        raise NotFound(f"no signing key was issued to {username} (qorgau keys issue)")
    key = _load_key(key_path, passphrase)
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return KeySigner(username, key, cert, [load_ca_certificate(folder)])


# --- verification -----------------------------------------------------------------------


@dataclass(frozen=True)
class SignatureCheck:
    """What the signature itself says, before the register is consulted."""

    readable: bool
    signed: bool
    intact: bool
    trusted: bool
    covers_whole_file: bool
    signer: str | None
    signer_username: str | None
    signed_at: datetime | None
    summary: str
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def check_signature(data: bytes, trust_roots: list[x509.Certificate]) -> SignatureCheck:
    """Validate the PDF's (single) signature against ``trust_roots`` only, offline."""

    def failed(problem: str, **kw: object) -> SignatureCheck:
        base: dict[str, object] = {
            "readable": False,
            "signed": False,
            "intact": False,
            "trusted": False,
            "covers_whole_file": False,
            "signer": None,
            "signer_username": None,
            "signed_at": None,
            "summary": "",
        }
        base.update(kw)
        return SignatureCheck(**base, problems=(problem,))  # type: ignore[arg-type]

    try:
        reader = PdfFileReader(BytesIO(data), strict=False)
        embedded = reader.embedded_signatures
    except Exception as exc:  # noqa: BLE001 - any parse failure means "not a readable PDF"
        return failed(f"not a readable PDF ({type(exc).__name__})")
    if not embedded:
        return failed("the PDF carries no signature", readable=True)
    context = ValidationContext(
        trust_roots=[_asn1_cert(c) for c in trust_roots], allow_fetching=False
    )
    try:
        status = _run(
            lambda: async_validate_pdf_signature(embedded[-1], signer_validation_context=context)
        )
    except Exception as exc:  # noqa: BLE001 - a malformed signature is a failed check
        return failed(f"the signature cannot be read ({type(exc).__name__})", readable=True)
    problems = []
    if len(embedded) != 1:
        problems.append(f"the PDF carries {len(embedded)} signatures; an order carries one")
    if not status.intact:
        problems.append("the signed bytes were changed after signing (digest mismatch)")
    elif not status.valid:
        problems.append("the signature value does not match the signer's key")
    if not status.trusted:
        problems.append("the signer's certificate was not issued by the Department CA")
    covers = status.coverage is not None and status.coverage.name == "ENTIRE_FILE"
    if not covers:
        problems.append("content was added after signing; the signature does not cover it")
    cert = status.signing_cert
    uid = None
    cn = None
    if cert is not None:
        native = cert.subject.native
        cn = native.get("common_name")
        uid = native.get("user_id")
    signed_at = status.signer_reported_dt
    return SignatureCheck(
        readable=True,
        signed=True,
        intact=bool(status.intact and status.valid),
        trusted=bool(status.trusted),
        covers_whole_file=covers,
        signer=cn,
        signer_username=uid,
        signed_at=signed_at.astimezone(UTC) if signed_at else None,
        summary=status.summary(),
        problems=tuple(problems),
    )
