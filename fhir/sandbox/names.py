"""Deterministic name and street lists for sandbox people, grouped by language of origin.

Several groups carry non-ASCII letters (Müller, José, Nguyễn, Øystein, Łukasz) so that every
layer of the server sees real Unicode names.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


@dataclass(frozen=True, slots=True)
class Origin:
    """Names of one language of origin, and that language as a BCP 47 tag with its display."""

    language: tuple[str, str]
    weight: float
    female: tuple[str, ...]
    male: tuple[str, ...]
    family: tuple[str, ...]


ORIGINS = (
    Origin(
        ("en-US", "English (United States)"),
        58,
        _words(
            "Emma Olivia Ava Sophia Isabella Mia Charlotte Amelia Harper Evelyn Abigail Emily "
            "Elizabeth Sofia Avery Ella Scarlett Grace Victoria Riley Aria Lily Hannah Nora Zoë Layla "
            "Brooklyn Margaret Dorothy Patricia Jennifer Linda Barbara Susan Karen Nancy Aaliyah "
            "Imani Priya Ananya"
        ),
        _words(
            "Liam Noah Oliver Elijah James William Benjamin Lucas Henry Alexander Mason Michael Ethan "
            "Daniel Jacob Logan Jackson Levi Sebastian Jack Owen Samuel Matthew Joseph John David "
            "Wyatt Robert Richard Thomas Charles George Kenneth Edward Ronald Malik Darnell Arjun "
            "Rohan Kwame"
        ),
        _words(
            "Smith Johnson Williams Brown Jones Miller Davis Wilson Anderson Taylor Thomas Moore "
            "Jackson Martin Lee Thompson White Harris Clark Lewis Robinson Walker Young Allen King "
            "Wright Scott Hill Green Adams Baker Nelson Carter Mitchell Roberts Turner Phillips "
            "Campbell Parker Evans Edwards Collins Stewart Morris Murphy Cook Rogers O'Brien O'Connor "
            "McCarthy Patel Shah Okafor Mensah Washington Kim Park Cohen Goldberg Fitzgerald"
        ),
    ),
    Origin(
        ("es", "Spanish"),
        14,
        _words("María Lucía Sofía Ana Carmen Isabel Valentina Camila Ximena Inés Begoña Rocío"),
        _words("José Luis Carlos Javier Andrés Miguel Diego Mateo Iñaki Ramón Tomás Jesús"),
        _words(
            "García Hernández Núñez Pérez Rodríguez Martínez López Gómez Sánchez Peña Ramírez Jiménez "
            "Muñoz Díaz Álvarez Castañeda Ibáñez Ortiz"
        ),
    ),
    Origin(
        ("de", "German"),
        5,
        _words("Anna Lena Käthe Sabine Jana Franziska Jördis Ursula"),
        _words("Jürgen Jörg Lukas Matthias Günther Stefan Björn Maximilian"),
        _words("Müller Schäfer Weiß Groß Köhler Schröder Becker Vogel Krüger Hoffmann"),
    ),
    Origin(
        ("fr", "French"),
        4,
        _words("Chloé Héloïse Océane Amélie Renée Élise Margaux Anaïs"),
        _words("François Étienne Jérôme Noël Loïc Théo Benoît Gaël"),
        _words("Lefèvre Dubois Girard Mercier Bérubé Côté Gagné Lévesque Bélanger"),
    ),
    Origin(
        ("vi", "Vietnamese"),
        4,
        _words("Thảo Linh Hương Mai Ngọc Trâm"),
        _words("Minh Đức Quang Tuấn Khoa Huy"),
        _words("Nguyễn Trần Lê Phạm Võ Đặng Bùi"),
    ),
    Origin(
        ("zh", "Chinese"),
        4,
        _words("Mei Xiu Li Jing Yan Hui"),
        _words("Wei Jun Hao Lei Ming Tao"),
        _words("Zhang Wang Chen Liu Huang Zhao Wu"),
    ),
    Origin(
        ("pl", "Polish"),
        3,
        _words("Zofia Małgorzata Agnieszka Katarzyna Ewa"),
        _words("Łukasz Paweł Wojciech Michał Krzysztof"),
        _words("Nowak Wójcik Kowalczyk Mazur Krawczyk Dąbrowski"),
    ),
    Origin(
        ("nb", "Norwegian Bokmål"),
        2,
        _words("Ingrid Sigrid Åse Solveig Kari"),
        _words("Øystein Bjørn Håkon Sindre Per"),
        _words("Ødegaard Jørgensen Haugen Bråten Sæther"),
    ),
    Origin(
        ("tr", "Turkish"),
        3,
        _words("Ayşe Elif Zeynep Gülşen Büşra"),
        _words("Mehmet Emre Ömer Barış Çağrı"),
        _words("Öztürk Şahin Yılmaz Çelik Doğan Kılıç"),
    ),
    Origin(
        ("ja", "Japanese"),
        3,
        _words("Yuki Haruka Aiko Sakura Emi"),
        _words("Haruto Kenji Takumi Ren Sōta"),
        _words("Nakamura Tanaka Satō Suzuki Watanabe Itō"),
    ),
)
ORIGIN_WEIGHTS = tuple(origin.weight for origin in ORIGINS)

STREETS = _words(
    "Maple Oak Washington Lincoln Elm Cedar Park Lake Hill Pine Main Church Highland Spring Franklin "
    "Chestnut Walnut Willow River Sunset Ridge Jefferson Adams Madison Harbor Prospect Union Grove "
    "Summer Beacon"
)
STREET_SUFFIXES = _words("Street Avenue Road Lane Drive Court Place Boulevard Way Terrace")

# Letters NFKD does not decompose into ASCII.
_ASCII = str.maketrans(
    {"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "ß": "ss", "đ": "d", "Đ": "D", "ı": "i"}
)


def ascii_fold(text: str) -> str:
    """Fold a name to lowercase ASCII letters for an e-mail address (``Nguyễn`` -> ``nguyen``)."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_ASCII))
    return "".join(ch for ch in decomposed if ch.isascii() and ch.isalnum()).lower()
