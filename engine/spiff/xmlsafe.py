"""Parse uploaded XML without letting it reach the host.

Every BPMN and DMN file an analyst uploads passes through :func:`parse_untrusted` before
SpiffWorkflow sees it. SpiffWorkflow parses with lxml's default parser, whose entity handling
depends on the installed lxml version (lxml < 5 reads local files through external entities),
so we never hand it bytes: we hand it the tree parsed here.

The rules are deliberately blunt. BPMN and DMN files never need a DTD, so any DOCTYPE is
refused instead of being parsed carefully; that one rule removes external entities (file and
network reads), parameter entities and entity expansion bombs ("billion laughs") together.
"""

from __future__ import annotations

import re

from lxml import etree

from engine.errors import DeployError, Problem

MAX_BYTES = 5 * 2**20
"""Largest file accepted. Real procedures are tens of kilobytes; the cap bounds parse memory."""

# The document is always decoded as UTF-8, whatever its XML declaration says: in UTF-8 all
# markup is ASCII, so the byte-level search below cannot be dodged with UTF-16 or UTF-7.
_DTD_MARKUP = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
# A DOCTYPE can only come before the root element. Searching just the prolog keeps a script or
# a documentation text that mentions "<!DOCTYPE html>" in CDATA from being refused.
_ROOT_START = re.compile(rb"<[A-Za-z_:]")
_LXML_POSITION = re.compile(r", line \d+, column \d+$")

_DOCTYPE_REFUSED = (
    "DOCTYPE declarations are not allowed (entities can read files or exhaust memory)"
)


def _parser() -> etree.XMLParser:
    # A new parser per call: lxml parsers keep state and are not safe to share between threads.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=False,
        encoding="utf-8",
    )


def parse_untrusted(content: bytes, filename: str) -> etree._ElementTree:
    """Parse an uploaded XML file with entities, DTDs and the network off.

    Args:
        content: The raw bytes as uploaded.
        filename: The name reported in problems.

    Returns:
        The parsed document; elements keep their ``sourceline`` for error reports.

    Raises:
        DeployError: With one problem: the file is too large, is not UTF-8, declares a
            DOCTYPE or entity, or is not well-formed XML.
    """
    if len(content) > MAX_BYTES:
        raise DeployError(
            [
                Problem(
                    filename,
                    None,
                    None,
                    f"the file is {len(content)} bytes; the limit is {MAX_BYTES} bytes "
                    "(5 MiB), which no real procedure comes near",
                )
            ]
        )
    if content.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in content[:4]:
        raise DeployError(
            [
                Problem(
                    filename,
                    1,
                    None,
                    "the file must be encoded as UTF-8 (UTF-16 or UTF-32 was found)",
                )
            ]
        )
    root_start = _ROOT_START.search(content)
    prolog_end = root_start.start() if root_start is not None else len(content)
    match = _DTD_MARKUP.search(content, 0, prolog_end)
    if match is not None:
        line = content.count(b"\n", 0, match.start()) + 1
        raise DeployError([Problem(filename, line, None, _DOCTYPE_REFUSED)])

    try:
        # Safe: entities, DTD loading and network access are all off in _parser().
        root = etree.fromstring(content, _parser())
    except etree.XMLSyntaxError as exc:
        message = _LXML_POSITION.sub("", exc.msg or str(exc))
        raise DeployError(
            [Problem(filename, exc.lineno, None, f"malformed XML: {message}")]
        ) from exc

    tree = root.getroottree()
    # Belt and braces: the byte search above should have caught these already.
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise DeployError([Problem(filename, None, None, _DOCTYPE_REFUSED)])
    if next(root.iter(etree.Entity), None) is not None:
        raise DeployError([Problem(filename, None, None, _DOCTYPE_REFUSED)])
    return tree
