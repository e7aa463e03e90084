"""A varied corpus of realistic R4B resources for the extractor tests."""

from __future__ import annotations

from decimal import Decimal

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
MRN = "http://hospital.example.org/mrn"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
META = {
    "versionId": "3",
    "lastUpdated": "2024-03-01T10:00:00Z",
    "source": "http://ehr.example.org/fhir#a1b2",
    "profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"],
    "tag": [{"system": "http://example.org/tags", "code": "imported", "display": "Imported"}],
    "security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "N"}],
}

PATIENT = {
    "resourceType": "Patient",
    "id": "p1",
    "meta": META,
    "identifier": [
        {
            "use": "usual",
            "type": {
                "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}],
                "text": "Medical Record Number",
            },
            "system": MRN,
            "value": "MRN-0001",
        },
        {"system": "http://hl7.org/fhir/sid/us-ssn", "value": "999-12-3456"},
    ],
    "active": True,
    "name": [
        {
            "use": "official",
            "family": "Lévesque",
            "given": ["Zoë", "Anne-Marie"],
            "prefix": ["Dr."],
            "suffix": ["PhD"],
        },
        {"use": "nickname", "text": "Zoe  Lev"},
    ],
    "telecom": [
        {"system": "phone", "value": "+1 555 0100", "use": "mobile", "rank": 1},
        {"system": "email", "value": "zoe@example.org"},
    ],
    "gender": "female",
    "birthDate": "1980-07-15",
    "deceasedBoolean": False,
    "address": [
        {
            "use": "home",
            "line": ["12 Rue des Écoles", "Apt 4"],
            "city": "Montréal",
            "district": "Plateau",
            "state": "QC",
            "postalCode": "H2X 1Y4",
            "country": "CA",
        },
    ],
    "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "fr-CA"}]}}],
    "generalPractitioner": [{"reference": "Practitioner/dr1"}],
    "managingOrganization": {"reference": "Organization/org1", "display": "General Hospital"},
    "link": [{"other": {"reference": "Patient/p1-old"}, "type": "replaces"}],
}

PATIENT_DECEASED = {
    "resourceType": "Patient",
    "id": "p2",
    "name": [{"family": "O'Brien", "given": ["Seán"]}],
    "gender": "male",
    "birthDate": "1931",
    "deceasedDateTime": "2021-02-03T04:05:06-05:00",
    "multipleBirthInteger": 2,
    "telecom": [{"system": "fax", "value": "+1 555 0199"}],
}

PATIENT_DEAD_BOOLEAN = {
    "resourceType": "Patient",
    "id": "p3",
    "deceasedBoolean": True,
    "birthDate": "2001-01",
}

OBSERVATION_HEART_RATE = {
    "resourceType": "Observation",
    "id": "hr1",
    "meta": {
        "lastUpdated": "2024-03-01T10:00:00Z",
        "profile": ["http://hl7.org/fhir/StructureDefinition/heartrate"],
    },
    "identifier": [{"system": "http://lab.example.org/obs", "value": "obs-1"}],
    "status": "final",
    "category": [{"coding": [{"system": OBS_CATEGORY, "code": "vital-signs", "display": "Vital Signs"}]}],
    "code": {"coding": [{"system": LOINC, "code": "8867-4", "display": "Heart rate"}], "text": "Heart rate"},
    "subject": {"reference": "Patient/p1"},
    "encounter": {"reference": "Encounter/e1"},
    "effectiveDateTime": "2024-01-02T03:04:05+02:00",
    "issued": "2024-01-02T03:10:00.123Z",
    "performer": [{"reference": "Practitioner/dr1"}, {"reference": "Patient/p1"}],
    "valueQuantity": {"value": 72, "unit": "beats/minute", "system": UCUM, "code": "/min"},
    "interpretation": [
        {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "N"}
            ]
        }
    ],
}

OBSERVATION_LAB = {
    "resourceType": "Observation",
    "id": "lab1",
    "status": "amended",
    "basedOn": [{"reference": "ServiceRequest/sr1"}],
    "category": [{"coding": [{"system": OBS_CATEGORY, "code": "laboratory"}]}],
    "code": {"coding": [{"system": LOINC, "code": "883-9", "display": "ABO group"}]},
    "subject": {"reference": "http://other.example.org/fhir/Patient/p1/_history/4"},
    "effectivePeriod": {"start": "2024-02-10T08:00:00Z", "end": "2024-02-10T09:30:00Z"},
    "valueCodeableConcept": {
        "coding": [{"system": SNOMED, "code": "112144000", "display": "Blood group A"}],
        "text": "Group A",
    },
    "specimen": {"reference": "Specimen/s1"},
    "method": {"text": "Tube agglutination"},
    "hasMember": [{"reference": "Observation/hr1"}],
    "note": [{"text": "repeat in a week"}],
}

OBSERVATION_BLOOD_PRESSURE = {
    "resourceType": "Observation",
    "id": "bp1",
    "status": "final",
    "category": [{"coding": [{"system": OBS_CATEGORY, "code": "vital-signs"}]}],
    "code": {"coding": [{"system": LOINC, "code": "85354-9", "display": "Blood pressure panel"}]},
    "subject": {"reference": "Patient/p1", "type": "Patient"},
    "effectiveDateTime": "2024-02-29",
    "performer": [{"reference": "PractitionerRole/role1"}],
    "device": {"reference": "Device/cuff1"},
    "component": [
        {
            "code": {"coding": [{"system": LOINC, "code": "8480-6", "display": "Systolic blood pressure"}]},
            "valueQuantity": {"value": Decimal("120.0"), "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"},
        },
        {
            "code": {"coding": [{"system": LOINC, "code": "8462-4", "display": "Diastolic blood pressure"}]},
            "valueQuantity": {"value": 80, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"},
        },
        {
            "code": {"coding": [{"system": LOINC, "code": "8478-0", "display": "Mean blood pressure"}]},
            "dataAbsentReason": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                        "code": "not-performed",
                    }
                ]
            },
        },
        {
            "code": {"text": "Cuff position"},
            "valueCodeableConcept": {
                "coding": [{"system": SNOMED, "code": "368208006", "display": "Left arm"}]
            },
        },
    ],
}

OBSERVATION_NOTE = {
    "resourceType": "Observation",
    "id": "note1",
    "status": "preliminary",
    "code": {"text": "Smoking status narrative"},
    "subject": {"reference": "Group/g1"},
    "focus": [{"reference": "Condition/c1"}],
    "derivedFrom": [{"reference": "DocumentReference/doc1"}],
    "partOf": [{"reference": "Procedure/proc1"}],
    "effectiveInstant": "2023-11-05T01:30:00.5-04:00",
    "valueString": "Former smoker, quit 2010",
}

OBSERVATION_TIMING = {
    "resourceType": "Observation",
    "id": "t1",
    "status": "final",
    "code": {"coding": [{"system": LOINC, "code": "29463-7"}]},
    "subject": {"reference": "Patient/p2"},
    "effectiveTiming": {
        "event": ["2024-05-01T08:00:00Z", "2024-05-02"],
        "repeat": {"boundsPeriod": {"start": "2024-05-01"}, "frequency": 1, "period": 1, "periodUnit": "d"},
    },
    "valuePeriod": {"start": "2024-05-01T08:00:00Z", "end": "2024-05-03"},
    "dataAbsentReason": {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "unknown"}]
    },
}

OBSERVATION_DATETIME_VALUE = {
    "resourceType": "Observation",
    "id": "dtv1",
    "status": "final",
    "code": {"coding": [{"system": LOINC, "code": "21112-8", "display": "Birth date"}]},
    "subject": {"reference": "Patient/p1"},
    "valueDateTime": "1980-07-15T10:20:30+05:30",
    "effectiveDateTime": "2024",
}

OBSERVATION_SAMPLED = {
    "resourceType": "Observation",
    "id": "ecg1",
    "status": "final",
    "code": {"coding": [{"system": LOINC, "code": "131328", "display": "MDC_ECG_ELEC_POTL"}]},
    "subject": {"reference": "Patient/p1"},
    "valueSampledData": {"origin": {"value": 2048}, "period": 10, "dimensions": 1, "data": "2041 2043 2047"},
}

CONDITION = {
    "resourceType": "Condition",
    "id": "c1",
    "identifier": [{"value": "cond-77"}],
    "clinicalStatus": {"coding": [{"system": CLINICAL, "code": "active"}]},
    "verificationStatus": {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}
        ]
    },
    "category": [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                    "code": "problem-list-item",
                }
            ]
        }
    ],
    "severity": {"coding": [{"system": SNOMED, "code": "24484000", "display": "Severe"}]},
    "code": {
        "coding": [{"system": SNOMED, "code": "44054006", "display": "Diabetes mellitus type 2"}],
        "text": "Type 2 diabetes",
    },
    "bodySite": [{"coding": [{"system": SNOMED, "code": "113331007", "display": "Endocrine system"}]}],
    "subject": {"reference": "Patient/p1"},
    "encounter": {"reference": "Encounter/e1"},
    "onsetAge": {"value": 52, "unit": "years", "system": UCUM, "code": "a"},
    "abatementString": "in remission",
    "recordedDate": "2024-01-15",
    "recorder": {"reference": "Practitioner/dr1"},
    "asserter": {"reference": "Patient/p1"},
    "stage": [{"summary": {"coding": [{"system": SNOMED, "code": "786005"}]}}],
    "evidence": [
        {
            "code": [{"coding": [{"system": SNOMED, "code": "271737000"}]}],
            "detail": [{"reference": "Observation/lab1"}],
        }
    ],
}

CONDITION_RANGES = {
    "resourceType": "Condition",
    "id": "c2",
    "code": {"text": "Childhood asthma"},
    "subject": {"reference": "Patient/p2"},
    "onsetRange": {
        "low": {"value": 5, "unit": "a", "system": UCUM, "code": "a"},
        "high": {"value": 7, "unit": "a", "system": UCUM, "code": "a"},
    },
    "abatementPeriod": {"start": "1950", "end": "1955-06"},
}

CONDITION_DATES = {
    "resourceType": "Condition",
    "id": "c3",
    "subject": {"reference": "Patient/p1"},
    "onsetDateTime": "2019-04-01",
    "abatementDateTime": "2020-04-01T12:00:00Z",
}

ENCOUNTER = {
    "resourceType": "Encounter",
    "id": "e1",
    "identifier": [{"system": "http://hospital.example.org/visits", "value": "V-1001"}],
    "status": "finished",
    "class": {
        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
        "code": "AMB",
        "display": "ambulatory",
    },
    "type": [{"coding": [{"system": SNOMED, "code": "185349003", "display": "Encounter for check up"}]}],
    "serviceType": {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/service-type", "code": "124"}]
    },
    "subject": {"reference": "Patient/p1"},
    "episodeOfCare": [{"reference": "EpisodeOfCare/eoc1"}],
    "basedOn": [{"reference": "ServiceRequest/sr1"}],
    "participant": [
        {
            "type": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                            "code": "PPRF",
                        }
                    ]
                }
            ],
            "individual": {"reference": "Practitioner/dr1"},
        },
    ],
    "appointment": [{"reference": "Appointment/ap1"}],
    "period": {"start": "2024-01-02T09:00:00+01:00", "end": "2024-01-02T09:40:00+01:00"},
    "length": {"value": 40, "unit": "minutes", "system": UCUM, "code": "min"},
    "reasonCode": [{"coding": [{"system": SNOMED, "code": "162673000"}], "text": "General check-up"}],
    "reasonReference": [{"reference": "Condition/c1"}],
    "diagnosis": [{"condition": {"reference": "Condition/c1"}, "rank": 1}],
    "account": [{"reference": "Account/acc1"}],
    "hospitalization": {"specialArrangement": [{"coding": [{"code": "wheel"}]}]},
    "location": [
        {"location": {"reference": "Location/loc1"}, "period": {"start": "2024-01-02T09:00:00+01:00"}}
    ],
    "serviceProvider": {"reference": "Organization/org1"},
}

MEDICATION_REQUEST = {
    "resourceType": "MedicationRequest",
    "id": "mr1",
    "identifier": [{"system": "http://pharmacy.example.org/rx", "value": "RX-42"}],
    "status": "active",
    "intent": "order",
    "category": [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/medicationrequest-category",
                    "code": "outpatient",
                }
            ]
        }
    ],
    "priority": "routine",
    "medicationCodeableConcept": {
        "coding": [
            {
                "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                "code": "860975",
                "display": "metformin hydrochloride 500 MG",
            }
        ],
    },
    "subject": {"reference": "Patient/p1"},
    "encounter": {"reference": "Encounter/e1"},
    "authoredOn": "2024-01-02T09:35:00+01:00",
    "requester": {"reference": "Practitioner/dr1"},
    "performer": {"reference": "Organization/org1"},
    "dosageInstruction": [
        {
            "text": "500 mg twice daily",
            "timing": {
                "event": ["2024-01-03T08:00:00Z"],
                "repeat": {
                    "boundsPeriod": {"start": "2024-01-03", "end": "2024-04-03"},
                    "frequency": 2,
                    "period": 1,
                    "periodUnit": "d",
                },
            },
            "doseAndRate": [{"doseQuantity": {"value": 500, "unit": "mg", "system": UCUM, "code": "mg"}}],
        },
    ],
    "dispenseRequest": {"performer": {"reference": "Organization/pharm1"}, "numberOfRepeatsAllowed": 3},
}

MEDICATION_REQUEST_REFERENCE = {
    "resourceType": "MedicationRequest",
    "id": "mr2",
    "status": "draft",
    "intent": "proposal",
    "medicationReference": {"reference": "Medication/med1"},
    "subject": {"reference": "Patient/p2"},
    "dispenseRequest": {"performer": {"reference": "Organization/pharm1"}},
}

PRACTITIONER = {
    "resourceType": "Practitioner",
    "id": "dr1",
    "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}],
    "active": True,
    "name": [{"family": "Nguyễn", "given": ["Thị", "Minh"], "prefix": ["Dr"]}],
    "telecom": [
        {"system": "phone", "value": "+1 555 0111", "use": "work"},
        {"system": "email", "value": "minh.nguyen@hospital.example.org"},
    ],
    "address": [{"line": ["1 Hospital Way"], "city": "Springfield", "state": "IL", "postalCode": "62701"}],
    "gender": "female",
    "communication": [{"coding": [{"system": "urn:ietf:bcp:47", "code": "vi"}]}],
    "qualification": [
        {"code": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0360", "code": "MD"}]}}
    ],
}

PRACTITIONER_ROLE = {
    "resourceType": "PractitionerRole",
    "id": "role1",
    "active": True,
    "period": {"start": "2020-01-01"},
    "practitioner": {"reference": "Practitioner/dr1"},
    "organization": {"reference": "Organization/org1"},
    "code": [
        {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/practitioner-role", "code": "doctor"}]}
    ],
    "specialty": [{"coding": [{"system": SNOMED, "code": "394583002"}]}],
    "location": [{"reference": "Location/loc1"}],
    "telecom": [
        {"system": "phone", "value": "+1 555 0112"},
        {"system": "email", "value": "cardio@example.org"},
    ],
}

ORGANIZATION = {
    "resourceType": "Organization",
    "id": "org1",
    "identifier": [{"system": "urn:oid:2.16.840.1.113883.4.7", "value": "12D4567890"}],
    "active": True,
    "type": [
        {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "prov"}]}
    ],
    "name": "General Hospital of Springfield",
    "alias": ["GHS", "Springfield General"],
    "telecom": [{"system": "url", "value": "https://ghs.example.org"}],
    "address": [{"text": "1 Hospital Way, Springfield IL", "city": "Springfield", "country": "USA"}],
    "partOf": {"reference": "Organization/network1"},
    "endpoint": [{"reference": "Endpoint/ep1"}],
}

IMMUNIZATION = {
    "resourceType": "Immunization",
    "id": "imm1",
    "identifier": [{"system": "urn:ietf:rfc:3986", "value": "urn:oid:1.3.6.1.4.1.21367.2005.3.7.1234"}],
    "status": "completed",
    "vaccineCode": {
        "coding": [
            {
                "system": "http://hl7.org/fhir/sid/cvx",
                "code": "208",
                "display": "COVID-19, mRNA, LNP-S, PF, 30 mcg/0.3 mL dose",
            }
        ]
    },
    "patient": {"reference": "Patient/p1"},
    "occurrenceDateTime": "2021-04-12T10:30:00-07:00",
    "lotNumber": "EW0182",
    "location": {"reference": "Location/loc1"},
    "manufacturer": {"reference": "Organization/pfizer"},
    "performer": [{"actor": {"reference": "Practitioner/dr1"}}],
    "reasonCode": [{"coding": [{"system": SNOMED, "code": "840539006"}]}],
    "reasonReference": [{"reference": "Condition/c1"}],
    "reaction": [{"date": "2021-04-13", "detail": {"reference": "Observation/lab1"}}],
    "protocolApplied": [
        {
            "series": "Primary",
            "targetDisease": [{"coding": [{"system": SNOMED, "code": "840539006"}]}],
            "doseNumberPositiveInt": 1,
            "seriesDosesPositiveInt": 2,
        }
    ],
}

IMMUNIZATION_STRING = {
    "resourceType": "Immunization",
    "id": "imm2",
    "status": "not-done",
    "statusReason": {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "MEDPREC"}]
    },
    "vaccineCode": {"text": "Influenza"},
    "patient": {"reference": "Patient/p2"},
    "occurrenceString": "last autumn",
}

ALLERGY = {
    "resourceType": "AllergyIntolerance",
    "id": "al1",
    "identifier": [{"system": "http://hospital.example.org/allergies", "value": "A-9"}],
    "clinicalStatus": {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active"}
        ]
    },
    "verificationStatus": {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                "code": "confirmed",
            }
        ]
    },
    "type": "allergy",
    "category": ["food", "medication"],
    "criticality": "high",
    "code": {"coding": [{"system": SNOMED, "code": "227493005", "display": "Cashew nuts"}]},
    "patient": {"reference": "Patient/p1"},
    "onsetDateTime": "2004",
    "recordedDate": "2014-10-09T14:58:00+11:00",
    "recorder": {"reference": "Practitioner/dr1"},
    "asserter": {"reference": "RelatedPerson/rp1"},
    "lastOccurrence": "2012-06",
    "reaction": [
        {
            "substance": {
                "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "1160593"}]
            },
            "manifestation": [
                {"coding": [{"system": SNOMED, "code": "39579001", "display": "Anaphylactic reaction"}]}
            ],
            "onset": "2012-06-12",
            "severity": "severe",
            "exposureRoute": {"coding": [{"system": SNOMED, "code": "34206005"}]},
        }
    ],
}

PROCEDURE = {
    "resourceType": "Procedure",
    "id": "proc1",
    "identifier": [{"system": "http://hospital.example.org/procedures", "value": "P-5"}],
    "instantiatesCanonical": ["http://example.org/fhir/PlanDefinition/appendectomy"],
    "instantiatesUri": ["http://example.org/protocols/appendectomy.html"],
    "basedOn": [{"reference": "ServiceRequest/sr1"}],
    "partOf": [{"reference": "Procedure/proc0"}],
    "status": "completed",
    "category": {"coding": [{"system": SNOMED, "code": "387713003", "display": "Surgical procedure"}]},
    "code": {"coding": [{"system": SNOMED, "code": "80146002", "display": "Appendectomy"}]},
    "subject": {"reference": "Patient/p1"},
    "encounter": {"reference": "Encounter/e1"},
    "performedPeriod": {"start": "2024-01-05T13:00:00Z", "end": "2024-01-05T14:30:00Z"},
    "performer": [
        {"actor": {"reference": "Practitioner/dr1"}, "onBehalfOf": {"reference": "Organization/org1"}}
    ],
    "location": {"reference": "Location/loc1"},
    "reasonCode": [{"text": "Acute appendicitis"}],
    "reasonReference": [{"reference": "Condition/c1"}],
    "bodySite": [{"coding": [{"system": SNOMED, "code": "66754008"}]}],
}

PROCEDURE_AGE = {
    "resourceType": "Procedure",
    "id": "proc2",
    "status": "completed",
    "code": {"text": "Tonsillectomy"},
    "subject": {"reference": "Patient/p2"},
    "performedAge": {"value": 6, "unit": "a", "system": UCUM, "code": "a"},
}

DIAGNOSTIC_REPORT = {
    "resourceType": "DiagnosticReport",
    "id": "dr-1",
    "identifier": [{"system": "http://lab.example.org/reports", "value": "R-1"}],
    "basedOn": [{"reference": "ServiceRequest/sr1"}],
    "status": "final",
    "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "LAB"}]}],
    "code": {"coding": [{"system": LOINC, "code": "58410-2", "display": "CBC panel"}]},
    "subject": {"reference": "Patient/p1"},
    "encounter": {"reference": "Encounter/e1"},
    "effectiveDateTime": "2024-02-10T08:00:00Z",
    "issued": "2024-02-10T12:00:00.000Z",
    "performer": [{"reference": "Organization/lab1"}],
    "resultsInterpreter": [{"reference": "Practitioner/dr1"}],
    "specimen": [{"reference": "Specimen/s1"}],
    "result": [{"reference": "Observation/lab1"}, {"reference": "Observation/hr1"}],
    "media": [{"link": {"reference": "Media/m1"}}],
    "conclusion": "Normal",
    "conclusionCode": [
        {"coding": [{"system": SNOMED, "code": "281900007", "display": "No abnormality detected"}]}
    ],
    "presentedForm": [{"contentType": "application/pdf", "url": "http://lab.example.org/reports/R-1.pdf"}],
}

LOCATION = {
    "resourceType": "Location",
    "id": "loc1",
    "status": "active",
    "operationalStatus": {"system": "http://terminology.hl7.org/CodeSystem/v2-0116", "code": "O"},
    "name": "South Wing, second floor",
    "alias": ["SW2"],
    "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "HOSP"}]}],
    "address": {"line": ["1 Hospital Way"], "city": "Springfield", "postalCode": "62701", "country": "USA"},
    "position": {"longitude": -89.65, "latitude": 39.78},
    "managingOrganization": {"reference": "Organization/org1"},
    "partOf": {"reference": "Location/campus"},
    "endpoint": [{"reference": "Endpoint/ep1"}],
}

GROUP = {
    "resourceType": "Group",
    "id": "g1",
    "type": "person",
    "actual": True,
    "code": {"text": "Smokers"},
    "characteristic": [
        {
            "code": {"coding": [{"system": SNOMED, "code": "77176002"}]},
            "valueBoolean": True,
            "exclude": False,
        },
        {"code": {"text": "age"}, "valueQuantity": {"value": 40, "unit": "a"}, "exclude": False},
    ],
    "member": [{"entity": {"reference": "Patient/p1"}}, {"entity": {"reference": "Patient/p2"}}],
}

GOAL = {
    "resourceType": "Goal",
    "id": "goal1",
    "lifecycleStatus": "active",
    "achievementStatus": {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/goal-achievement", "code": "in-progress"}
        ]
    },
    "category": [
        {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/goal-category", "code": "dietary"}]}
    ],
    "description": {"text": "Lose 5 kg"},
    "subject": {"reference": "Patient/p1"},
    "startDate": "2024-01-10",
    "target": [
        {
            "measure": {"coding": [{"system": LOINC, "code": "29463-7"}]},
            "detailQuantity": {"value": 80, "unit": "kg"},
            "dueDate": "2024-07-01",
        }
    ],
}

RISK_ASSESSMENT = {
    "resourceType": "RiskAssessment",
    "id": "ra1",
    "status": "final",
    "method": {"coding": [{"system": "http://example.org/methods", "code": "framingham"}]},
    "subject": {"reference": "Patient/p1"},
    "occurrenceDateTime": "2024-01-20",
    "performer": {"reference": "Practitioner/dr1"},
    "prediction": [
        {"outcome": {"text": "Heart attack"}, "probabilityDecimal": Decimal("0.020")},
        {"outcome": {"text": "Stroke"}, "probabilityRange": {"low": {"value": 1}, "high": {"value": 5}}},
    ],
}

INVOICE = {
    "resourceType": "Invoice",
    "id": "inv1",
    "status": "issued",
    "subject": {"reference": "Patient/p1"},
    "date": "2024-02-01",
    "issuer": {"reference": "Organization/org1"},
    "account": {"reference": "Account/acc1"},
    "totalNet": {"value": 1200.5, "currency": "USD"},
    "totalGross": {"value": Decimal("1300.50"), "currency": "USD"},
    "participant": [{"actor": {"reference": "Practitioner/dr1"}}],
}

CHARGE_ITEM = {
    "resourceType": "ChargeItem",
    "id": "ci1",
    "status": "billable",
    "code": {"coding": [{"system": "http://example.org/charges", "code": "01510"}]},
    "subject": {"reference": "Patient/p1"},
    "context": {"reference": "Encounter/e1"},
    "occurrencePeriod": {"start": "2024-01-02T09:00:00+01:00", "end": "2024-01-02T09:40:00+01:00"},
    "quantity": {"value": 2},
    "factorOverride": 0.8,
    "priceOverride": {"value": 40, "currency": "EUR"},
    "enteredDate": "2024-01-02T10:00:00+01:00",
    "account": [{"reference": "Account/acc1"}],
}

COMPOSITION = {
    "resourceType": "Composition",
    "id": "comp1",
    "status": "final",
    "type": {"coding": [{"system": LOINC, "code": "11488-4", "display": "Consult note"}]},
    "subject": {"reference": "Patient/p1"},
    "date": "2024-01-02T10:00:00+01:00",
    "author": [{"reference": "Practitioner/dr1"}],
    "title": "Consultation note",
    "confidentiality": "N",
    "relatesTo": [
        {"code": "replaces", "targetReference": {"reference": "Composition/comp0"}},
        {"code": "appends", "targetIdentifier": {"system": "http://example.org/docs", "value": "D-1"}},
    ],
    "section": [
        {
            "title": "Assessment",
            "code": {"coding": [{"system": LOINC, "code": "51848-0"}]},
            "entry": [{"reference": "Condition/c1"}],
        }
    ],
}

QUESTIONNAIRE = {
    "resourceType": "Questionnaire",
    "id": "q1",
    "url": "http://example.org/fhir/Questionnaire/phq-9",
    "identifier": [{"system": "http://example.org/forms", "value": "PHQ-9"}],
    "version": "1.0.0",
    "name": "PHQ9",
    "title": "Patient Health Questionnaire",
    "status": "active",
    "subjectType": ["Patient"],
    "date": "2023-06-01",
    "publisher": "Example Publisher",
    "description": "Depression **screening**",
    "useContext": [
        {
            "code": {"system": "http://terminology.hl7.org/CodeSystem/usage-context-type", "code": "focus"},
            "valueCodeableConcept": {"coding": [{"system": SNOMED, "code": "35489007"}]},
        },
        {
            "code": {"system": "http://terminology.hl7.org/CodeSystem/usage-context-type", "code": "age"},
            "valueRange": {
                "low": {"value": 18, "unit": "a", "system": UCUM, "code": "a"},
                "high": {"value": 65, "unit": "a", "system": UCUM, "code": "a"},
            },
        },
        {
            "code": {
                "system": "http://terminology.hl7.org/CodeSystem/usage-context-type",
                "code": "workflow",
            },
            "valueQuantity": {"value": 3},
        },
    ],
    "jurisdiction": [{"coding": [{"system": "urn:iso:std:iso:3166", "code": "US"}]}],
    "effectivePeriod": {"start": "2023-06-01"},
    "code": [{"system": LOINC, "code": "44249-1"}],
    "item": [
        {
            "linkId": "1",
            "text": "Little interest",
            "type": "choice",
            "definition": "http://example.org/StructureDefinition/phq#item1",
            "code": [{"system": LOINC, "code": "44250-9"}],
        }
    ],
}

PLAN_DEFINITION = {
    "resourceType": "PlanDefinition",
    "id": "pd1",
    "url": "http://example.org/fhir/PlanDefinition/appendectomy",
    "status": "active",
    "type": {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/plan-definition-type",
                "code": "clinical-protocol",
            }
        ]
    },
    "library": ["http://example.org/fhir/Library/helpers"],
    "relatedArtifact": [
        {"type": "depends-on", "resource": "http://example.org/fhir/Library/base|2.0"},
        {"type": "citation", "citation": "Doe J. 2020"},
        {"type": "composed-of", "resource": "http://example.org/fhir/ActivityDefinition/a1"},
    ],
    "action": [{"title": "Operate", "definitionCanonical": "http://example.org/fhir/ActivityDefinition/a1"}],
}

CONCEPT_MAP = {
    "resourceType": "ConceptMap",
    "id": "cm1",
    "url": "http://example.org/fhir/ConceptMap/cm1",
    "status": "draft",
    "sourceUri": "http://example.org/fhir/ValueSet/source",
    # targetUri, not targetCanonical: fhirpathpy's "as uri" takes a canonical (a uri subtype) or
    # not depending on what it compiled before; the index keeps each under its own parameter.
    "targetUri": "http://example.org/fhir/ValueSet/target",
    "group": [
        {
            "source": "http://example.org/cs1",
            "target": "http://example.org/cs2",
            "element": [{"code": "a", "target": [{"code": "b", "equivalence": "equivalent"}]}],
        }
    ],
}

CONSENT = {
    "resourceType": "Consent",
    "id": "cons1",
    "status": "active",
    "scope": {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
        ]
    },
    "category": [{"coding": [{"system": LOINC, "code": "59284-0"}]}],
    "patient": {"reference": "Patient/p1"},
    "dateTime": "2024-01-01T00:00:00Z",
    "sourceAttachment": {"title": "Signed form", "url": "http://example.org/forms/1.pdf"},
    "policyRule": {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]
    },
}

RELATED_PERSON = {
    "resourceType": "RelatedPerson",
    "id": "rp1",
    "patient": {"reference": "Patient/p1"},
    "relationship": [
        {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "MTH"}]}
    ],
    "name": [{"family": "Lévesque", "given": ["Marie"]}],
    "telecom": [{"system": "phone", "value": "+1 555 0123"}, {"system": "sms", "value": "+1 555 0124"}],
    "birthDate": "1955-03-02",
}

CARE_PLAN = {
    "resourceType": "CarePlan",
    "id": "cp1",
    "status": "active",
    "intent": "plan",
    "subject": {"reference": "Patient/p1"},
    "period": {"end": "2024-12-31"},
    "careTeam": [{"reference": "CareTeam/ct1"}],
    "addresses": [{"reference": "Condition/c1"}],
    "activity": [
        {
            "detail": {
                "status": "scheduled",
                "code": {"coding": [{"system": SNOMED, "code": "229065009"}]},
                "scheduledTiming": {"repeat": {"boundsPeriod": {"start": "2024-02-01", "end": "2024-03-01"}}},
                "performer": [{"reference": "Practitioner/dr1"}],
            }
        },
        {"detail": {"status": "not-started", "scheduledString": "Every morning"}},
    ],
}

DOCUMENT_REFERENCE = {
    "resourceType": "DocumentReference",
    "id": "doc1",
    "status": "current",
    "type": {"coding": [{"system": LOINC, "code": "34133-9"}]},
    "subject": {"reference": "Patient/p1"},
    "date": "2024-01-02T10:00:00.123456789+01:00",
    "author": [{"reference": "Practitioner/dr1"}],
    "relatesTo": [{"code": "transforms", "target": {"reference": "DocumentReference/doc0"}}],
    "content": [
        {
            "attachment": {"contentType": "text/plain", "language": "en", "url": "Binary/b1"},
            "format": {"system": "urn:oid:1.3.6.1.4.1.19376.1.2.3", "code": "urn:ihe:pcc:xphr:2007"},
        }
    ],
    "context": {
        "encounter": [{"reference": "Encounter/e1"}],
        "period": {"start": "2024-01-02T09:00:00+01:00"},
    },
}

MESSAGE_HEADER = {
    "resourceType": "MessageHeader",
    "id": "mh1",
    "eventCoding": {"system": "http://example.org/fhir/message-events", "code": "admin-notify"},
    "destination": [
        {"endpoint": "http://downstream.example.org/fhir", "receiver": {"reference": "Organization/org1"}}
    ],
    "sender": {"reference": "Organization/org1"},
    "source": {"endpoint": "http://upstream.example.org/fhir", "name": "ACME"},
    "focus": [{"reference": "Patient/p1"}],
    "response": {"identifier": "5015fe84-8e76-4526-89d8-44b322e8d4fb", "code": "ok"},
}

APPOINTMENT = {
    "resourceType": "Appointment",
    "id": "ap1",
    "status": "booked",
    "serviceType": [{"coding": [{"code": "57"}]}],
    "start": "2024-01-02T09:00:00+01:00",
    "end": "2024-01-02T09:40:00+01:00",
    "participant": [
        {"actor": {"reference": "Patient/p1"}, "status": "accepted"},
        {"actor": {"reference": "Practitioner/dr1"}, "status": "accepted"},
        {"actor": {"reference": "Location/loc1"}, "status": "accepted"},
    ],
}

SERVICE_REQUEST = {
    "resourceType": "ServiceRequest",
    "id": "sr1",
    "status": "active",
    "intent": "order",
    "code": {"coding": [{"system": LOINC, "code": "58410-2"}]},
    "subject": {"reference": "Patient/p1"},
    "occurrenceDateTime": "2024-02-10",
    "authoredOn": "2024-02-01T12:00:00Z",
    "requester": {"reference": "Practitioner/dr1"},
    "performer": [{"reference": "Organization/lab1"}],
    "specimen": [{"reference": "Specimen/s1"}],
    "requisition": {"system": "http://example.org/requisitions", "value": "REQ-1"},
}

CORPUS = [
    PATIENT, PATIENT_DECEASED, PATIENT_DEAD_BOOLEAN,
    OBSERVATION_HEART_RATE, OBSERVATION_LAB, OBSERVATION_BLOOD_PRESSURE, OBSERVATION_NOTE, OBSERVATION_TIMING,
    OBSERVATION_DATETIME_VALUE, OBSERVATION_SAMPLED,
    CONDITION, CONDITION_RANGES, CONDITION_DATES, ENCOUNTER, MEDICATION_REQUEST, MEDICATION_REQUEST_REFERENCE,
    PRACTITIONER, PRACTITIONER_ROLE, ORGANIZATION, IMMUNIZATION, IMMUNIZATION_STRING, ALLERGY,
    PROCEDURE, PROCEDURE_AGE, DIAGNOSTIC_REPORT, LOCATION, GROUP, GOAL, RISK_ASSESSMENT, INVOICE, CHARGE_ITEM,
    COMPOSITION, QUESTIONNAIRE, PLAN_DEFINITION, CONCEPT_MAP, CONSENT, RELATED_PERSON, CARE_PLAN,
    DOCUMENT_REFERENCE, MESSAGE_HEADER, APPOINTMENT, SERVICE_REQUEST,
]  # fmt: skip
