"""The clinicians' page: open a patient of the hospital and launch an application in their
record (SMART EHR launch): the browser goes to the app's launch URL with ``iss`` (the hospital's
FHIR base URL) and a single-use ``launch``."""

from __future__ import annotations

import orjson
from authlib.common.urls import add_params_to_uri
from flask import redirect, render_template, request

from app.api.body import FHIR_ID
from app.extensions import db
from app.headers import csp_sending_forms_to
from app.models import Hospital
from app.web import bp
from app.web.auth import signed_in
from app.web.pages import WebError
from fhir.errors import FhirError
from fhir.storage.sql import SqlRepository, patient_exists
from oauth import fhir_base_url, launchable_apps, start_launch

PATIENTS_SHOWN = 50


def _patients(hospital_id: str, name: str) -> list[dict]:
    args = [("_count", str(PATIENTS_SHOWN)), ("_sort", "family")]
    if name:
        args.append(("name", name))
    try:
        bundle = orjson.loads(SqlRepository(db.session, hospital_id).search("Patient", args))
    except FhirError:
        return []
    shown = []
    for entry in bundle.get("entry", []):
        resource = entry["resource"]
        names = resource.get("name") or [{}]
        first = names[0] if isinstance(names[0], dict) else {}
        words = [*(first.get("given") or []), first.get("family") or ""]
        shown.append(
            {
                "id": resource["id"],
                "name": first.get("text") or " ".join(w for w in words if isinstance(w, str) and w) or "—",
                "birth": resource.get("birthDate"),
            }
        )
    return shown


@bp.get("/ehr")
def ehr_home():
    user = signed_in("clinician")
    name = request.args.get("name", "")[:100]
    apps = launchable_apps(user.hospital_id)
    page = render_template(
        "web/ehr/home.html",
        user=user,
        hospital=db.session.get(Hospital, user.hospital_id),
        patients=_patients(user.hospital_id, name),
        apps=apps,
        name=name,
    )
    # A launch is a form whose answer redirects to the app's launch URL.
    return page, 200, {"Content-Security-Policy": csp_sending_forms_to(app.launch_uri for app in apps)}


@bp.post("/ehr/launch")
def ehr_launch():
    user = signed_in("clinician")
    patient_id = request.form.get("patient", "")
    client_id = request.form.get("app", "")
    app = next((a for a in launchable_apps(user.hospital_id) if a.client_id == client_id), None)
    if app is None:
        raise WebError(404, "This hospital has no such application to launch.")
    if not FHIR_ID.match(patient_id) or not patient_exists(user.hospital_id, patient_id):
        raise WebError(404, "This hospital has no such patient.")
    launch = start_launch(app, user.hospital_id, patient_id, user.id)
    target = add_params_to_uri(app.launch_uri, [("iss", fhir_base_url(user.hospital_id)), ("launch", launch)])
    return redirect(target, code=303)
