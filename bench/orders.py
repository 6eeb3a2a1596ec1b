"""Orders of the head: time to render an order's bilingual PDF, sign it (PAdES B-B, EC P-256)
and verify it (signature + Department CA), per order. Prints figures; never a test.

    .venv/bin/python -P bench/orders.py [N]   (-P: bench/engine.py must not shadow the package)
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

# The project root first: this folder's engine.py would otherwise shadow the engine package.
ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this folder comes first on sys.path, where engine.py and http.py would
# shadow the engine package and the standard library's http.
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench")]

from engine import signing  # noqa: E402
from engine.order_pdf import Registration, SignatureMark, render_order  # noqa: E402
from engine.order_templates import TEMPLATES, fill  # noqa: E402

CASE = {
    "child_name": "Айғаным Өмірбекқызы Құрманова",
    "child_iin": "190515600016",
    "child_birth_date": "15.05.2019",
    "guardian_name": "Гүлнұр Һадиқызы Ісмағұлова",
    "guardian_iin": "850101400011",
    "application_date": "02.03.2026",
}


def main(n: int) -> None:
    folder = Path(tempfile.mkdtemp()) / "keys"
    signing.create_ca(passphrase="bench-ca-passphrase", folder=folder)
    signing.issue_signer_key(
        username="head",
        full_name="Әлия Сәрсенова",
        ca_passphrase="bench-ca-passphrase",
        passphrase="bench-passphrase",
        folder=folder,
    )
    t0 = time.perf_counter()
    signer = signing.open_signer("head", "bench-passphrase", folder)
    open_ms = (time.perf_counter() - t0) * 1000
    root = signing.load_ca_certificate(folder)
    content = fill(TEMPLATES["guardianship.establish"], CASE)
    timings: dict[str, list[float]] = {"render": [], "sign": [], "verify": []}
    for seq in range(1, n + 1):
        reg = Registration("core", 2026, seq, str(seq), date(2026, 3, 2))
        t0 = time.perf_counter()
        mark = SignatureMark(signer.subject, signer.certificate, datetime.now(UTC))
        pdf = render_order(
            content,
            registration=reg,
            signer_position=("Басшы", "Руководитель"),
            signer_name=signer.subject,
            mark=mark,
        )
        t1 = time.perf_counter()
        signed = signer.sign_pdf(pdf, reason=f"№ {seq}", location="Қостанай")
        t2 = time.perf_counter()
        check = signing.check_signature(signed, [root])
        t3 = time.perf_counter()
        assert check.ok, check.problems
        for key, value in zip(timings, (t1 - t0, t2 - t1, t3 - t2), strict=True):
            value_ms = value * 1000
            timings[key].append(value_ms)
    print(f"orders: {n}, PDF size {len(signed) / 1024:.0f} KB, key opened in {open_ms:.1f} ms")
    for key, values in timings.items():
        values.sort()
        p95 = values[int(len(values) * 0.95) - 1]
        print(f"{key:7s} median {statistics.median(values):6.1f} ms   p95 {p95:6.1f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50)
