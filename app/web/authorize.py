"""The authorization endpoint (SMART App Launch 2.x, RFC 6749 §4.1): the patient signs in with
the portal account, sees which application asks for what, unticks what they will not share,
chooses how long the application may keep access, and approves or denies.

``GET`` and ``POST /oauth/authorize`` (SMART's ``authorize-post``) take the request; its
parameters ride through sign-in in the ``next`` URL and through the consent form in hidden
fields, and are checked again when the decision comes (``POST /oauth/authorize/decision``,
which carries the portal's CSRF token and needs the same signed-in patient). Pages are never
framed (``X-Frame-Options: DENY``, ``frame-ancestors 'none'``).
"""

from __future__ import annotations

from urllib.parse import urlencode

from flask import redirect, render_template, request, url_for

from app.extensions import db
from app.headers import csp_sending_forms_to
from app.models import CLINICIAN_ALLOWANCE, Hospital, User
from app.sessions import current_session_hash, current_user
from app.web import bp
from app.web.auth import signed_in
from app.web.scope_words import scope_in_words
from fhir.policy import patient_visible_types
from oauth import (
    DEFAULT_EXPIRY,
    EXPIRY_CHOICES,
    AuthorizePageError,
    AuthorizeRedirectError,
    approve_authorization,
    granted_scope,
    parse_authorization_request,
    patient_offer,
    refresh_kind,
    staff_offer,
)

EXPIRY_LABELS = {"1h": "One hour", "30d": "30 days", "1y": "One year", "never": "Until I revoke it"}


def _checked(source):
    """The request, or the response that ends it: an error page (never a redirect while the
    client or its redirect URI is in doubt) or the RFC 6749 §4.1.2.1 error redirect."""
    try:
        return parse_authorization_request(source), None
    except AuthorizePageError as error:
        return None, (
            render_template("web/authorize/error.html", user=current_user(), message=error.message),
            400,
        )
    except AuthorizeRedirectError as error:
        return None, redirect(error.location(), code=303)


@bp.route("/oauth/authorize", methods=["GET", "POST"])
def authorize():
    auth_request, answer = _checked(request.args if request.method == "GET" else request.form)
    if answer is not None:
        return answer
    user = current_user()
    if user is None:
        here = url_for("web.authorize") + "?" + urlencode(auth_request.parameters)
        return redirect(url_for("web.login_form", next=here), code=303)
    return _consent_page(auth_request, user)


def _offer(auth_request):
    """What the signer may grant: a patient their own record; in an EHR launch, the clinician
    what their role allows, for the launched patient."""
    if auth_request.launch is not None:
        clinician = db.session.get(User, auth_request.launch.user_id)
        has_fhir_user = clinician is not None and clinician.practitioner_id is not None
        return staff_offer(auth_request.scope, CLINICIAN_ALLOWANCE, has_fhir_user=has_fhir_user)
    return patient_offer(auth_request.scope, patient_visible_types())


def _consent_page(auth_request, user, error: str | None = None, status: int = 200):
    offer = _offer(auth_request)
    page = render_template(
        "web/authorize/consent.html",
        user=user,
        app=auth_request.client,
        hospital=db.session.get(Hospital, auth_request.hospital_id),
        parameters=auth_request.parameters,
        choices=[
            (
                scope,
                scope_in_words(scope, rest=scope in offer.expanded, staff=auth_request.launch is not None),
            )
            for scope in offer.choices
        ],
        refused=offer.refused,
        keeps_access=refresh_kind(" ".join(offer.context)) is not None,
        expiries=EXPIRY_LABELS,
        default_expiry=DEFAULT_EXPIRY,
        problem=_account_problem(user, auth_request),
        error=error,
        launched_patient=auth_request.launch.patient_id if auth_request.launch is not None else None,
    )
    # The decision's answer redirects to the application: see ``csp_sending_forms_to``.
    return page, status, {"Content-Security-Policy": csp_sending_forms_to([auth_request.redirect_uri])}


def _account_problem(user, auth_request) -> str | None:
    """Why this account cannot approve: only a patient of the hospital named, for their own record;
    in an EHR launch, only the clinician who launched the app."""
    if auth_request.launch is not None:
        if user.role != "clinician" or user.id != auth_request.launch.user_id:
            return "Only the clinician who launched this application can approve it. You can only deny."
        return None
    if user.role != "patient" or not user.patient_id:
        return (
            f"You are logged in as {user.email}, which is not a patient's account."
            " Log out and log in with your patient account, or deny."
        )
    if user.hospital_id != auth_request.hospital_id:
        return (
            "Your record is kept at another hospital than the one this application asked for."
            " You can only deny."
        )
    return None


@bp.post("/oauth/authorize/decision")
def authorize_decision():
    auth_request, answer = _checked(request.form)
    if answer is not None:
        return answer
    user = signed_in()
    if request.form.get("decision") == "deny":
        return redirect(
            auth_request.location(error="access_denied", error_description="The patient denied access."),
            code=303,
        )
    if request.form.get("decision") != "approve":
        return _consent_page(auth_request, user, "Choose Allow or Deny.", 400)
    if _account_problem(user, auth_request):
        return _consent_page(auth_request, user, status=403)
    expiry = request.form.get("expiry")
    if expiry not in EXPIRY_CHOICES:
        return _consent_page(auth_request, user, "Choose how long the application may keep access.", 400)
    types = patient_visible_types()
    scope = granted_scope(_offer(auth_request), request.form.getlist("grant"), types)
    online_only = refresh_kind(scope) == "online_access"
    launch = auth_request.launch
    code = approve_authorization(
        auth_request,
        user.id,
        launch.patient_id if launch is not None else user.patient_id,
        scope,
        EXPIRY_CHOICES[expiry],
        current_session_hash() if online_only else None,
        _own_resource(user, launch is not None),
    )
    return redirect(auth_request.location(code=code), code=303)


def _own_resource(user, ehr: bool) -> str | None:
    """The account's own resource, its fhirUser: a patient's Patient, a clinician's Practitioner."""
    if ehr:
        return f"Practitioner/{user.practitioner_id}" if user.practitioner_id else None
    return f"Patient/{user.patient_id}"


@bp.errorhandler(AuthorizeRedirectError)
def _redirect_error(error: AuthorizeRedirectError):
    """An error found when the decision is recorded (the launch used meanwhile)."""
    return redirect(error.location(), code=303)
