"""Text no column can store: PostgreSQL's text types refuse U+0000, and a lone surrogate cannot
be encoded for them. URLs may not hold any C0 control character either (none is ever needed)."""

from __future__ import annotations

import re

URL_UNSTORABLE = re.compile(r"[\x00-\x1f\ud800-\udfff]")
VALUE_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")
