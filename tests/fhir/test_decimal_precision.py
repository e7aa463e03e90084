"""Decimals keep their precision on the way in, in storage and on the way out (FHIR R4B
datatypes.html#decimal: 1.50 is not 1.5), and number and quantity search honour it."""

from __future__ import annotations

import pytest

from tests.fhir.test_bundles import bundle, entry

# 11.0, -0.0 and 0.0 take the fast reading (a float prints them as written); the others do not
WRITTEN = [
    "1.50",
    "0.12345678901234567890",
    "1.5e3",
    "100.000",
    "-0.0",
    "0.0000001",
    "11.0",
    "0.0",
    "1234567890123456.0",
]


def weight_text(value: str) -> bytes:
    return (
        '{"resourceType":"Observation","status":"final","code":{"text":"weight"},'
        f'"valueQuantity":{{"value":{value},"unit":"kg","system":"http://unitsofmeasure.org","code":"kg"}}}}'
    ).encode()


@pytest.mark.parametrize("value", WRITTEN)
def test_a_decimal_comes_back_as_written_from_every_way_out(fhir, value):
    created = fhir.post("/Observation", weight_text(value))
    assert created.status_code == 201, created.get_json()
    written = f'"value":{value},'.encode()
    assert written in created.data
    resource_id = created.get_json()["id"]
    for path in (
        f"/Observation/{resource_id}",
        f"/Observation/{resource_id}/_history/1",
        f"/Observation?_id={resource_id}",
        f"/Observation/{resource_id}/_history",
        f"/Observation/{resource_id}?_elements=value",
    ):
        response = fhir.get(path)
        assert response.status_code == 200 and written in response.data, (path, response.data[:300])


def test_a_patch_and_a_transaction_keep_the_precision(fhir):
    resource_id = fhir.post("/Observation", weight_text("2.0")).get_json()["id"]
    patched = fhir.patch(
        f"/Observation/{resource_id}", b'[{"op":"add","path":"/valueQuantity/comparator","value":">="}]'
    )
    assert patched.status_code == 200 and b'"value":2.0,' in patched.data
    posted = fhir.post("/", bundle("transaction", entry(None, method="POST", url="Observation")))
    assert posted.status_code == 400  # (an entry without a resource: the shape check)
    text = (
        b'{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"POST","url":"Observation"},'
        b'"resource":' + weight_text("3.10") + b"}]}"
    )
    response = fhir.post("/", text)
    assert response.status_code == 200, response.get_json()
    created = response.get_json()["entry"][0]["response"]["location"].split("/")[-3]
    assert b'"value":3.10,' in fhir.get(f"/Observation/{created}").data


def test_number_and_quantity_search_find_decimals_read_exactly(fhir):
    """The index takes a decimal as written (a Decimal, not a float); a search value's own
    precision sets its range (search.html#number: 1.50 is [1.495, 1.505))."""
    precise = fhir.post("/Observation", weight_text("1.50")).get_json()["id"]
    rough = fhir.post("/Observation", weight_text("1.5")).get_json()["id"]
    many = fhir.post("/Observation", weight_text("0.12345678901234567890")).get_json()["id"]
    assert set(fhir.ids("Observation?value-quantity=1.50")) == {precise, rough}
    assert fhir.ids("Observation?value-quantity=1.51") == []
    assert set(fhir.ids("Observation?value-quantity=gt1.499")) == {precise, rough}
    assert fhir.ids("Observation?value-quantity=0.123456789012") == [many]


def test_not_a_number_stays_refused(fhir):
    for text in (b'{"resourceType":"Patient","multipleBirthInteger":NaN}', b'{"resourceType":"Patient",}'):
        response = fhir.post("/Patient", text)
        assert response.status_code == 400
