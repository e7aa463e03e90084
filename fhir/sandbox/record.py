"""The FHIR R4B shape of one patient's record: a builder per resource type, ids, emission order.

``chart`` decides what happens to a patient; this module only writes it down, so the clinical
story and the resource shapes can change independently.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from fhir.sandbox.clock import NOW, Zone
from fhir.sandbox.drugs import Drug
from fhir.sandbox.elements import coding, concept, quantity, reference
from fhir.sandbox.labs import Lab, Panel
from fhir.sandbox.people import Staff
from fhir.sandbox.terminology import (
    ACUTE_THERAPY,
    ADMINISTERING_PROVIDER,
    ALLERGY_CLINICAL,
    ALLERGY_VERIFICATION,
    ATTENDER,
    CONDITION_CATEGORY,
    CONDITION_CLINICAL,
    CONDITION_VERIFICATION,
    CONTINUOUS_THERAPY,
    CVX,
    DISCHARGED_HOME,
    ENCOUNTER_CLASS,
    ENCOUNTER_KINDS,
    INTERPRETATIONS,
    LAB_SERVICE,
    LABORATORY,
    LOINC,
    ORDERED_DOSE,
    PRIMARY_PERFORMER,
    RXNORM,
    SOCIAL_HISTORY,
    THO,
    UCUM,
    VITAL_SIGNS,
    Term,
)
from fhir.sandbox.vaccines import ROUTE_SYSTEM, SITE_SYSTEM, VACCINES

# Each kind's resources, in the order a patient's record is emitted (dependencies first).
KINDS = (
    ("enc", "Encounter"),
    ("obs", "Observation"),
    ("cond", "Condition"),
    ("med", "MedicationRequest"),
    ("alg", "AllergyIntolerance"),
    ("imm", "Immunization"),
    ("proc", "Procedure"),
    ("dr", "DiagnosticReport"),
)
MEDICATION_CATEGORY = THO + "medicationrequest-category"


def _days(value: int) -> dict:
    return {"value": value, "unit": "days", "system": UCUM, "code": "d"}


class Record:
    """Accumulates one patient's resources; ids are ``<patient id>-<kind><n>``."""

    def __init__(self, patient_id: str, zone: Zone, laboratory_id: str, laboratory_name: str) -> None:
        self.patient_id = patient_id
        self.zone = zone
        self.laboratory = (laboratory_id, laboratory_name)
        self.resources: dict[str, list[dict]] = {kind: [] for kind, _ in KINDS}

    def _new(self, kind: str, resource_type: str) -> dict:
        bucket = self.resources[kind]
        resource = {"resourceType": resource_type, "id": f"{self.patient_id}-{kind}{len(bucket)}"}
        bucket.append(resource)
        return resource

    def _subject(self) -> dict:
        return reference("Patient", self.patient_id)

    def emit(self, patient: dict) -> list[dict]:
        """The Patient followed by its resources grouped by type in dependency order."""
        out = [patient]
        for kind, _ in KINDS:
            out.extend(self.resources[kind])
        return out

    # -- encounters -------------------------------------------------------------------------

    def encounter(
        self,
        kind: str,
        start: datetime,
        end: datetime,
        practitioner: Staff,
        organization: tuple[str, str],
        reason: Term | None,
    ) -> str:
        """Write a finished Encounter at the patient's site and return its id."""
        class_code, type_term = ENCOUNTER_KINDS[kind]
        period = {"start": self.zone.stamp(start), "end": self.zone.stamp(end)}
        role = ATTENDER if class_code == "IMP" else PRIMARY_PERFORMER
        enc = self._new("enc", "Encounter")
        enc["status"] = "finished"
        enc["class"] = coding(ENCOUNTER_CLASS[class_code])
        enc["type"] = [concept(type_term)]
        enc["subject"] = self._subject()
        enc["participant"] = [
            {"type": [concept(role)], "period": dict(period), "individual": practitioner.ref()}
        ]
        enc["period"] = period
        if reason:
            enc["reasonCode"] = [concept(reason)]
        if class_code == "IMP":
            enc["hospitalization"] = {"dischargeDisposition": concept(DISCHARGED_HOME)}
        enc["serviceProvider"] = reference("Organization", *organization)
        return enc["id"]

    # -- observations and reports -------------------------------------------------------------

    def _observation(self, category: Term, code: dict, encounter_id: str, when: datetime) -> dict:
        obs = self._new("obs", "Observation")
        obs["status"] = "final"
        obs["category"] = [concept(category)]
        obs["code"] = code
        obs["subject"] = self._subject()
        obs["encounter"] = reference("Encounter", encounter_id)
        obs["effectiveDateTime"] = self.zone.stamp(when)
        return obs

    def vital(
        self,
        code: dict,
        encounter_id: str,
        when: datetime,
        performer: Staff,
        value: float,
        unit: str,
        ucum: str,
    ) -> None:
        """Write a vital-signs Observation with a UCUM quantity (R4B observation-vitalsigns)."""
        obs = self._observation(VITAL_SIGNS, code, encounter_id, when)
        obs["performer"] = [performer.ref()]
        obs["valueQuantity"] = quantity(value, unit, ucum)

    def blood_pressure(
        self,
        code: dict,
        components: tuple[dict, dict],
        encounter_id: str,
        when: datetime,
        performer: Staff,
        systolic: int,
        diastolic: int,
    ) -> None:
        """Write a blood-pressure panel with systolic and diastolic components in mm[Hg]."""
        obs = self._observation(VITAL_SIGNS, code, encounter_id, when)
        obs["performer"] = [performer.ref()]
        obs["component"] = [
            {"code": components[0], "valueQuantity": quantity(systolic, "mmHg", "mm[Hg]")},
            {"code": components[1], "valueQuantity": quantity(diastolic, "mmHg", "mm[Hg]")},
        ]

    def smoking_status(self, code: dict, value: Term, encounter_id: str, when: datetime) -> None:
        """Write the social-history Observation of tobacco use."""
        obs = self._observation(SOCIAL_HISTORY, code, encounter_id, when)
        obs["valueCodeableConcept"] = concept(value)

    def lab_report(
        self,
        panel: Panel,
        results: list[tuple[Lab, float]],
        encounter_id: str,
        drawn: datetime,
        resulted: datetime,
    ) -> None:
        """Write each result as a laboratory Observation and the DiagnosticReport that lists them."""
        issued = self.zone.stamp(resulted)
        performer = reference("Organization", *self.laboratory)
        refs = []
        for lab, value in results:
            obs = self._observation(LABORATORY, concept((LOINC, lab.code, lab.display)), encounter_id, drawn)
            obs["issued"] = issued
            obs["performer"] = [dict(performer)]
            obs["valueQuantity"] = quantity(value, lab.unit)
            if lab.low is not None and value < lab.low:
                flag = "L"
            elif lab.high is not None and value > lab.high:
                flag = "H"
            else:
                flag = "N"
            obs["interpretation"] = [concept(INTERPRETATIONS[flag])]
            bounds = {}
            if lab.low is not None:
                bounds["low"] = quantity(lab.low, lab.unit)
            if lab.high is not None:
                bounds["high"] = quantity(lab.high, lab.unit)
            obs["referenceRange"] = [bounds]
            refs.append(reference("Observation", obs["id"]))
        report = self._new("dr", "DiagnosticReport")
        report["status"] = "final"
        report["category"] = [concept(LAB_SERVICE)]
        report["code"] = concept((LOINC, panel.code, panel.display))
        report["subject"] = self._subject()
        report["encounter"] = reference("Encounter", encounter_id)
        report["effectiveDateTime"] = self.zone.stamp(drawn)
        report["issued"] = issued
        report["performer"] = [performer]
        report["result"] = refs

    # -- problems, medications, allergies ----------------------------------------------------

    def condition(
        self,
        term: Term,
        category: str,
        encounter_id: str,
        recorded: datetime,
        recorder: Staff,
        onset: str,
        abatement: str | None = None,
        verification: str = "confirmed",
    ) -> str:
        """Write a Condition; one with an abatement is resolved, otherwise active. Return its id."""
        cond = self._new("cond", "Condition")
        status = "resolved" if abatement else "active"
        cond["clinicalStatus"] = concept((CONDITION_CLINICAL, status, status.capitalize()))
        cond["verificationStatus"] = concept(
            (CONDITION_VERIFICATION, verification, verification.capitalize())
        )
        display = "Problem List Item" if category == "problem-list-item" else "Encounter Diagnosis"
        cond["category"] = [concept((CONDITION_CATEGORY, category, display))]
        cond["code"] = concept(term)
        cond["subject"] = self._subject()
        cond["encounter"] = reference("Encounter", encounter_id)
        cond["onsetDateTime"] = onset
        if abatement:
            cond["abatementDateTime"] = abatement
        cond["recordedDate"] = self.zone.stamp(recorded)
        cond["recorder"] = recorder.ref()
        return cond["id"]

    def medication(
        self,
        drug: Drug,
        encounter_id: str,
        authored: datetime,
        requester: Staff,
        reason_id: str | None,
        category: str,
        refills: int,
        days: int | None = None,
        prior_id: str | None = None,
    ) -> dict:
        """Write a MedicationRequest: a ``days`` course, or long-term therapy when None. Return it."""
        med = self._new("med", "MedicationRequest")
        finished = days is not None and authored + timedelta(days=days) < NOW
        med["status"] = "completed" if finished else "active"
        med["intent"] = "order"
        med["category"] = [concept((MEDICATION_CATEGORY, category, category.capitalize()))]
        med["medicationCodeableConcept"] = concept((RXNORM, drug.code, drug.display))
        med["subject"] = self._subject()
        med["encounter"] = reference("Encounter", encounter_id)
        med["authoredOn"] = self.zone.stamp(authored)
        med["requester"] = requester.ref()
        if reason_id:
            med["reasonReference"] = [reference("Condition", reason_id)]
        med["courseOfTherapyType"] = concept(ACUTE_THERAPY if days else CONTINUOUS_THERAPY)
        repeat: dict = {"frequency": drug.frequency, "period": drug.period, "periodUnit": drug.period_unit}
        if days:
            repeat["boundsDuration"] = _days(days)
        med["dosageInstruction"] = [
            {
                "sequence": 1,
                "text": drug.sig,
                "timing": {"repeat": repeat},
                "asNeededBoolean": drug.as_needed,
                "route": concept(drug.route),
                "doseAndRate": [{"type": concept(ORDERED_DOSE), "doseQuantity": quantity(*drug.dose)}],
            }
        ]
        med["dispenseRequest"] = {
            "numberOfRepeatsAllowed": refills,
            "expectedSupplyDuration": _days(days or 30),
        }
        if prior_id:
            med["priorPrescription"] = reference("MedicationRequest", prior_id)
        return med

    def allergy(
        self,
        term: Term,
        category: str,
        type_: str,
        criticality: str,
        reactions: list[tuple[Term, str]],
        encounter_id: str,
        recorded: datetime,
        recorder: Staff,
        onset: str | None,
        verification: str,
    ) -> None:
        """Write an active AllergyIntolerance with its reactions."""
        allergy = self._new("alg", "AllergyIntolerance")
        allergy["clinicalStatus"] = concept((ALLERGY_CLINICAL, "active", "Active"))
        allergy["verificationStatus"] = concept(
            (ALLERGY_VERIFICATION, verification, verification.capitalize())
        )
        allergy["type"] = type_
        allergy["category"] = [category]
        allergy["criticality"] = criticality
        allergy["code"] = concept(term)
        allergy["patient"] = self._subject()
        allergy["encounter"] = reference("Encounter", encounter_id)
        if onset:
            allergy["onsetDateTime"] = onset
        allergy["recordedDate"] = self.zone.stamp(recorded)
        allergy["recorder"] = recorder.ref()
        allergy["reaction"] = [
            {"substance": concept(term), "manifestation": [concept(sign)], "severity": severity}
            for sign, severity in reactions
        ]

    # -- immunizations and procedures --------------------------------------------------------

    def immunization(
        self,
        cvx: str,
        encounter_id: str,
        when: datetime,
        performer: Staff,
        lot: str,
        site: tuple[str, str],
    ) -> None:
        """Write a completed Immunization given at the encounter."""
        display, (route_code, route_display), dose = VACCINES[cvx]
        imm = self._new("imm", "Immunization")
        imm["status"] = "completed"
        imm["vaccineCode"] = concept((CVX, cvx, display))
        imm["patient"] = self._subject()
        imm["encounter"] = reference("Encounter", encounter_id)
        imm["occurrenceDateTime"] = self.zone.stamp(when)
        imm["primarySource"] = True
        imm["lotNumber"] = lot
        if route_code != "PO":
            imm["site"] = concept((SITE_SYSTEM, *site))
        imm["route"] = concept((ROUTE_SYSTEM, route_code, route_display))
        imm["doseQuantity"] = quantity(dose, "mL")
        imm["performer"] = [{"function": concept(ADMINISTERING_PROVIDER), "actor": performer.ref()}]

    def procedure(
        self,
        term: Term,
        encounter_id: str,
        start: datetime,
        end: datetime | None,
        performer: Staff,
        reason_id: str | None = None,
    ) -> None:
        """Write a completed Procedure, at a moment (``end`` None) or over a period."""
        proc = self._new("proc", "Procedure")
        proc["status"] = "completed"
        proc["code"] = concept(term)
        proc["subject"] = self._subject()
        proc["encounter"] = reference("Encounter", encounter_id)
        if end is None:
            proc["performedDateTime"] = self.zone.stamp(start)
        else:
            proc["performedPeriod"] = {"start": self.zone.stamp(start), "end": self.zone.stamp(end)}
        proc["performer"] = [{"actor": performer.ref()}]
        if reason_id:
            proc["reasonReference"] = [reference("Condition", reason_id)]
