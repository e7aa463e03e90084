"""How deeply a parsed JSON value nests, found without recursion.

Code that walks a request body recursively (Bundle reference rewriting, JSON Patch's copies,
validation) raises ``RecursionError`` on a body nested some 1,000 levels deep, which the JSON
parsers accept (orjson up to 1,024). Bodies are checked here once, where they are parsed, against
a limit far above real data, so that nothing after that can recurse out of stack.
"""

from __future__ import annotations


def nested_within(value: object, limit: int) -> bool:
    """Whether no object or array in ``value`` lies more than ``limit`` levels deep (the
    outermost is level 1). Level by level, each container visited once: ~3 ms for a 500-entry
    transaction Bundle (``isinstance`` with a union, or a generator, took four times as long)."""
    level = [value] if type(value) in (dict, list) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return False
        inner: list = []
        add = inner.append
        for container in level:
            for item in container.values() if type(container) is dict else container:
                kind = type(item)
                if kind is dict or kind is list:
                    add(item)
        level = inner
    return True
