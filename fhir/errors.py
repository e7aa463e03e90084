"""FHIR errors: one exception family, rendered as an OperationOutcome in one place."""

from __future__ import annotations

from dataclasses import dataclass, field

# FHIR R4B valueset issue-type codes used here.
INVALID = "invalid"
STRUCTURE = "structure"
REQUIRED = "required"
NOT_FOUND = "not-found"
DELETED = "deleted"
CONFLICT = "conflict"
DUPLICATE = "duplicate"
NOT_SUPPORTED = "not-supported"
SECURITY = "security"
LOGIN = "login"
FORBIDDEN = "forbidden"
PROCESSING = "processing"
TOO_COSTLY = "too-costly"
EXCEPTION = "exception"
THROTTLED = "throttled"
INFORMATIONAL = "informational"


@dataclass
class Issue:
    code: str
    diagnostics: str
    severity: str = "error"
    expression: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        issue = {"severity": self.severity, "code": self.code, "diagnostics": self.diagnostics}
        if self.expression:
            issue["expression"] = self.expression
        return issue


class FhirError(Exception):
    """An HTTP error with its OperationOutcome (FHIR R4B http.html, operationoutcome.html)."""

    def __init__(self, status: int, issues: list[Issue], headers: dict | None = None):
        super().__init__(issues[0].diagnostics if issues else str(status))
        self.status = status
        self.issues = issues
        self.headers = headers or {}

    def outcome(self) -> dict:
        return operation_outcome(self.issues)

    @classmethod
    def simple(
        cls, status: int, code: str, diagnostics: str, expression: list[str] | None = None
    ) -> FhirError:
        return cls(status, [Issue(code, diagnostics, expression=expression or [])])

    @classmethod
    def invalid(cls, diagnostics: str, expression: list[str] | None = None) -> FhirError:
        return cls.simple(400, INVALID, diagnostics, expression)

    @classmethod
    def not_found(cls, diagnostics: str = "Resource not found.") -> FhirError:
        return cls.simple(404, NOT_FOUND, diagnostics)

    @classmethod
    def gone(cls, diagnostics: str, version_id: int | None = None) -> FhirError:
        headers = {"ETag": f'W/"{version_id}"'} if version_id else {}
        return cls(410, [Issue(DELETED, diagnostics)], headers)

    @classmethod
    def conflict(cls, diagnostics: str, status: int = 409) -> FhirError:
        return cls.simple(status, CONFLICT, diagnostics)

    @classmethod
    def precondition_failed(cls, diagnostics: str) -> FhirError:
        return cls.simple(412, CONFLICT, diagnostics)

    @classmethod
    def not_supported(cls, diagnostics: str, status: int = 400) -> FhirError:
        return cls.simple(status, NOT_SUPPORTED, diagnostics)


def operation_outcome(issues: list[Issue]) -> dict:
    return {"resourceType": "OperationOutcome", "issue": [issue.as_json() for issue in issues]}
