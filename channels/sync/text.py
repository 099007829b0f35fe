"""Text from a channel the database can hold: PostgreSQL text holds no NUL, UTF-8 no lone surrogate."""

import re

UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def is_storable(value: str) -> bool:
    return not UNSTORABLE.search(value)


def storable_text(value: str) -> str:
    """Free text (a name, an address, a title, a reason): NUL dropped, a lone surrogate shown as �."""
    return UNSTORABLE.sub(lambda match: "" if match.group() == "\x00" else "\ufffd", value)
