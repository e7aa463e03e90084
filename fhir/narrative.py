"""The XHTML of a narrative (``text.div``) by FHIR R4B's rules (narrative.html#xhtml, txt-1,
txt-2): well-formed XHTML in a ``div`` of the XHTML namespace, holding only basic formatting
elements and attributes — no script, form, frame, object, head, body or link; no event
attributes; no ``javascript:`` (or other script) URLs; images and styles that load nothing from
elsewhere. A stored ``<script>`` would run in every app that renders the narrative.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from html.entities import name2codepoint

XHTML = "{http://www.w3.org/1999/xhtml}"
# txt-1: the basic HTML 4.0 formatting elements (chapters 7–11 and 15), a, img.
_ELEMENT_NAMES = (
    "a abbr acronym address b bdo big blockquote br caption cite code col colgroup dd del dfn div dl dt em "
    "h1 h2 h3 h4 h5 h6 hr i img ins kbd li ol p pre q samp small span strong sub sup table tbody td tfoot "
    "th thead tr tt ul var"
)
_ATTRIBUTE_NAMES = (
    "abbr accesskey align alt axis bgcolor border cellhalign cellpadding cellspacing cellvalign char "
    "charoff charset cite class colspan compact coords dir frame headers height href hreflang hspace id "
    "lang longdesc name nowrap rel rev rowspan rules scope shape span src start style summary tabindex "
    "title type valign value vspace width"
)
ELEMENTS = frozenset(_ELEMENT_NAMES.split())
ATTRIBUTES = frozenset(_ATTRIBUTE_NAMES.split())
# URLs are judged as a browser reads them: without the tabs, newlines and spaces it strips, and
# with a backslash taken for a slash. Links may go to the web, mail or a phone; images and other
# loaded content only within the narrative (a fragment) or as an inline raster image.
_URL_NOISE = re.compile(r"[\x00-\x20]")
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):", re.IGNORECASE)
_LINK_SCHEMES = frozenset({"http", "https", "mailto", "tel"})
_INLINE_IMAGE = re.compile(r"^data:image/(png|gif|jpeg|webp)[;,]", re.IGNORECASE)
_URL_ATTRIBUTES = frozenset({"href", "src", "longdesc", "cite"})
_LOADED = frozenset({"src", "longdesc"})
# A style only formats: nothing that loads, computes, or hides a word behind a CSS escape.
_STYLE_LOADS = re.compile(r"url\s*\(|expression\s*\(|@import|behavior\s*:|\\|/\*|javascript:", re.IGNORECASE)
# XML knows five named entities; HTML's (&nbsp; and the like) are read as the characters they name.
_ENTITY = re.compile(r"&([A-Za-z][A-Za-z0-9]*);")
_XML_ENTITIES = frozenset({"lt", "gt", "amp", "quot", "apos"})


def _as_xml(text: str) -> str:
    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name in _XML_ENTITIES or name not in name2codepoint:
            return match.group(0)
        return f"&#{name2codepoint[name]};"

    return _ENTITY.sub(replace, text)


def _url_problem(attribute: str, url: str) -> str | None:
    seen = _URL_NOISE.sub("", url).replace("\\", "/")
    scheme = _SCHEME.match(seen)
    if attribute in _LOADED:
        if _INLINE_IMAGE.match(seen) or (not scheme and not seen.startswith("//")):
            return None
        return "loads from elsewhere; a narrative's images are its own (a #fragment or inline data)."
    if scheme and scheme.group(1).lower() not in _LINK_SCHEMES:
        return f"uses the {scheme.group(1)[:20]!r} scheme; links may be http(s), mailto or tel."
    return None


def narrative_problems(div: object) -> list[str]:
    """What breaks the rules in a narrative's ``div`` (empty when it is fine)."""
    if not isinstance(div, str):
        return ["the narrative div must be a string of XHTML."]
    if "<!" in div or "<?" in div:
        # Comments, CDATA, DOCTYPEs and processing instructions: an XML parser drops them, an
        # HTML one reads "<!-->" or "<?x >" otherwise, and what follows would be live markup.
        return ["the narrative holds a comment, CDATA, DOCTYPE or processing instruction, which it may not."]
    try:
        # No DOCTYPE got this far, so no entity of the document's own can expand.
        root = ElementTree.fromstring(_as_xml(div))  # noqa: S314
    except ElementTree.ParseError as error:
        return [f"the narrative is not well-formed XHTML ({str(error)[:120]})."]
    if root.tag != f"{XHTML}div":
        return ['the narrative must be one <div xmlns="http://www.w3.org/1999/xhtml"> element.']
    problems = []
    for element in root.iter():
        namespace, _, name = str(element.tag).rpartition("}")
        if f"{namespace}}}" != XHTML or name not in ELEMENTS:
            problems.append(f"<{name[:40]}> is not allowed in a narrative (txt-1).")
            continue
        for attribute, value in element.attrib.items():
            local = attribute.rpartition("}")[2].lower()  # HTML reads attribute names in any case
            if attribute.startswith("{") and not attribute.startswith(
                "{http://www.w3.org/XML/1998/namespace}"
            ):
                problems.append(f"<{name}> may not carry the attribute {local[:40]}.")
            elif not attribute.startswith("{") and local not in ATTRIBUTES:
                problems.append(f"<{name}> may not carry the attribute {local[:40]} (txt-1).")
            elif local in _URL_ATTRIBUTES and (problem := _url_problem(local, value)):
                problems.append(f"<{name} {local}> {problem}")
            elif local == "style" and _STYLE_LOADS.search(value):
                problems.append(f"the style of <{name}> loads or computes something; it may only format.")
    if not "".join(root.itertext()).strip() and not any(e.tag == f"{XHTML}img" for e in root.iter()):
        problems.append("the narrative has no content (txt-2).")
    return list(dict.fromkeys(problems))
