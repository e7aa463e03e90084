"""Tables of the FHIR store.

``fhir_resources`` holds the current version of every resource as the exact JSON text we
serve, so a read is one primary-key lookup and no re-serialization. ``fhir_history`` keeps
every version. Search goes through the ``fhir_idx_*`` index tables, written in the same
transaction as the resource; each is keyed for its lookups by
``(hospital_id, resource_type, param, value...)``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from app.extensions import db

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
SEQUENCE = BigInteger().with_variant(Integer, "sqlite")

metadata = db.metadata

# The owner indexes (to find a resource's rows) lead with the id: every lookup names all three
# columns, and a B-tree insert compares keys column by column, so leading with the column that
# differs measured about 3 us less per row than leading with the hospital and type all share.
OWNER_KEY = ("resource_id", "resource_type", "hospital_id")


def _owner_columns() -> list[Column]:
    return [
        Column("hospital_id", String(40), nullable=False),
        Column("resource_type", String(64), nullable=False),
        Column("resource_id", String(64), nullable=False),
    ]


resources = Table(
    "fhir_resources",
    metadata,
    Column("hospital_id", String(40), ForeignKey("hospitals.id", ondelete="CASCADE"), primary_key=True),
    Column("resource_type", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("version_id", Integer, nullable=False),
    Column("last_updated", DateTime(timezone=True), nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    # The history row that created the resource: paging cursors hide newer resources.
    Column("created_seq", SEQUENCE, nullable=False),
    Column("content", Text, nullable=True),
    Index("ix_fhir_resources_type_updated", "hospital_id", "resource_type", "last_updated"),
)

history = Table(
    "fhir_history",
    metadata,
    Column("seq", SEQUENCE, primary_key=True, autoincrement=True),
    Column("hospital_id", String(40), ForeignKey("hospitals.id", ondelete="CASCADE"), nullable=False),
    Column("resource_type", String(64), nullable=False),
    Column("id", String(64), nullable=False),
    Column("version_id", Integer, nullable=False),
    Column("last_updated", DateTime(timezone=True), nullable=False),
    Column("method", String(6), nullable=False),
    Column("content", Text, nullable=True),
    UniqueConstraint("hospital_id", "resource_type", "id", "version_id", name="uq_fhir_history_version"),
    Index("ix_fhir_history_hospital_seq", "hospital_id", "seq"),
    Index("ix_fhir_history_type_seq", "hospital_id", "resource_type", "seq"),
    Index("ix_fhir_history_hospital_updated", "hospital_id", "last_updated"),  # _history?_since=
)

# One row per conditional create: the unique key makes parallel conditional creates with
# the same criteria produce at most one resource.
conditional_keys = Table(
    "fhir_conditional_keys",
    metadata,
    Column("hospital_id", String(40), ForeignKey("hospitals.id", ondelete="CASCADE"), primary_key=True),
    Column("resource_type", String(64), primary_key=True),
    Column("criteria_hash", String(64), primary_key=True),
    Column("resource_id", String(64), nullable=False),
)

idx_string = Table(
    "fhir_idx_string",
    metadata,
    *_owner_columns(),
    Column("param", String(100), nullable=False),
    Column("value", String(200), nullable=False),
    Column("exact", String(200), nullable=False),
    Index("ix_fhir_idx_string_lookup", "hospital_id", "resource_type", "param", "value"),
    Index("ix_fhir_idx_string_owner", *OWNER_KEY),
)

idx_token = Table(
    "fhir_idx_token",
    metadata,
    *_owner_columns(),
    Column("param", String(100), nullable=False),
    Column("system", String(256), nullable=True),
    Column("code", String(256), nullable=True),
    Column("text", String(256), nullable=True),
    # The resource id last: a search's probe of one candidate (``code = Y`` of resource R) is
    # then one exact look-up, where it read every resource with the code (migration 0021).
    Index(
        "ix_fhir_idx_token_lookup", "hospital_id", "resource_type", "param", "code", "system", "resource_id"
    ),
    Index("ix_fhir_idx_token_owner", *OWNER_KEY),
)

idx_reference = Table(
    "fhir_idx_reference",
    metadata,
    *_owner_columns(),
    Column("param", String(100), nullable=False),
    Column("target_type", String(64), nullable=True),
    Column("target_id", String(64), nullable=True),
    Column("reference", String(512), nullable=False),
    # Every reference lookup (search, chain, _include, _revinclude) names the source type and
    # parameter: no index by target alone.
    Index(
        "ix_fhir_idx_reference_lookup",
        "hospital_id",
        "resource_type",
        "param",
        "target_id",
        "target_type",
        "resource_id",
    ),  # fmt: skip
    Index("ix_fhir_idx_reference_owner", *OWNER_KEY),
)

idx_date = Table(
    "fhir_idx_date",
    metadata,
    *_owner_columns(),
    Column("param", String(100), nullable=False),
    Column("low", DateTime(timezone=True), nullable=False),
    Column("high", DateTime(timezone=True), nullable=False),
    Index("ix_fhir_idx_date_lookup", "hospital_id", "resource_type", "param", "low", "high"),
    Index("ix_fhir_idx_date_owner", *OWNER_KEY),
)

idx_number = Table(
    "fhir_idx_number",
    metadata,
    *_owner_columns(),
    Column("param", String(100), nullable=False),
    Column("low", Numeric(36, 12), nullable=False),
    Column("high", Numeric(36, 12), nullable=False),
    # The value as written: gt/lt/ge/le compare it directly, through the lookup index.
    Column("value", Numeric(36, 12), nullable=False),
    Index("ix_fhir_idx_number_lookup", "hospital_id", "resource_type", "param", "value"),
    Index("ix_fhir_idx_number_owner", *OWNER_KEY),
)

idx_quantity = Table(
    "fhir_idx_quantity",
    metadata,
    *_owner_columns(),
    Column("param", String(100), nullable=False),
    Column("low", Numeric(36, 12), nullable=False),
    Column("high", Numeric(36, 12), nullable=False),
    Column("system", String(256), nullable=True),
    Column("code", String(256), nullable=True),
    Column("unit", String(256), nullable=True),
    Column("value", Numeric(36, 12), nullable=False),
    Index("ix_fhir_idx_quantity_lookup", "hospital_id", "resource_type", "param", "code", "value"),
    Index("ix_fhir_idx_quantity_owner", *OWNER_KEY),
)

idx_uri = Table(
    "fhir_idx_uri",
    metadata,
    *_owner_columns(),
    Column("param", String(100), nullable=False),
    Column("value", String(512), nullable=False),
    Index("ix_fhir_idx_uri_lookup", "hospital_id", "resource_type", "param", "value"),
    Index("ix_fhir_idx_uri_owner", *OWNER_KEY),
)

# Composite parameters (search.html#composite): one row per element the parameter's expression
# finds (an Observation, each of its components) and pair of values found in it, the token part
# in system/code and the second part in the columns of its type; pairs from different elements
# never combine, so component A's code with component B's value does not match.
idx_composite = Table(
    "fhir_idx_composite",
    metadata,
    *_owner_columns(),
    Column("param", String(100), nullable=False),
    Column("system", String(256), nullable=True),
    Column("code", String(256), nullable=True),
    Column("value_system", String(256), nullable=True),  # token, quantity
    Column("value_code", String(256), nullable=True),  # token, quantity
    Column("value_unit", String(256), nullable=True),  # quantity
    Column("value_number", Numeric(36, 12), nullable=True),  # quantity
    Column("value_low", DateTime(timezone=True), nullable=True),  # date
    Column("value_high", DateTime(timezone=True), nullable=True),  # date
    Column("value_string", String(200), nullable=True),  # string, normalized
    Index("ix_fhir_idx_composite_lookup", "hospital_id", "resource_type", "param", "code", "system"),
    Index("ix_fhir_idx_composite_owner", *OWNER_KEY),
)

# Which patients' compartments (FHIR patient CompartmentDefinition) hold each resource.
compartments = Table(
    "fhir_compartments",
    metadata,
    Column("hospital_id", String(40), primary_key=True),
    Column("patient_id", String(64), primary_key=True),
    Column("resource_type", String(64), primary_key=True),
    Column("resource_id", String(64), primary_key=True),
    Index("ix_fhir_compartments_owner", *OWNER_KEY),
)

INDEX_TABLES = {
    "string": idx_string,
    "token": idx_token,
    "reference": idx_reference,
    "date": idx_date,
    "number": idx_number,
    "quantity": idx_quantity,
    "uri": idx_uri,
    "composite": idx_composite,
}
