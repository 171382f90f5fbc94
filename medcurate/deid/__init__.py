"""Chinese clinical de-identification: the privacy gate in front of every EHR step.

Library::

    from medcurate.deid import Deidentifier
    deid = Deidentifier("mask")                       # or "surrogate" / "redact" / {"default": "mask", "DATE": "surrogate"}
    result = deid.deidentify(text, patient="p-001")   # result.text, result.spans (offsets into `text`)
    spans = deid.scan(text)                           # Span(start, end, type, score)

Surrogates need a user-held secret (``$MEDCURATE_DEID_SECRET`` or ``secret=``): the same
patient's identifiers map to the same stand-ins across all that patient's records, and
dates move by a per-patient offset so intervals survive.

Recipe step ``deid`` (medcurate/deid/steps.py) and the gate the EHR steps check
(medcurate/deid/gate.py); CLI ``medcurate deid INPUT …`` and ``medcurate deid check OUT``.
Identifier types: PERSON, ID_CARD, PHONE, ADDRESS, DATE, MEDICAL_RECORD_NO, INSURANCE_NO,
EMAIL, ORGANIZATION, URL, IP, BANK_CARD, LICENSE_PLATE, AGE (over 89).
"""
from medcurate.deid.engine import IDENTIFIER_TYPES, POLICIES, Deidentifier, DeidResult, Policy
from medcurate.deid.gate import mark_deidentified, require_deidentified
from medcurate.deid.recognizers import REGISTRY, Span

__all__ = ["Deidentifier", "DeidResult", "Policy", "POLICIES", "IDENTIFIER_TYPES", "REGISTRY", "Span",
           "mark_deidentified", "require_deidentified"]
