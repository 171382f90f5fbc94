"""Columns whose name says they hold an identifier (姓名, 身份证号, 联系电话, 住址, 病案号, patient_id,
phone, mrn …). They are never scanned as text: key columns (the patient or record number, needed to
keep one patient's records together) become a keyed pseudonym, the others are dropped. Users extend
the list with ``identifier_columns`` in the deid step or ``--identifier-column`` on the command line.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

# normalised column name -> identifier type
IDENTIFIER_COLUMNS: dict[str, str] = {
    **dict.fromkeys(("姓名", "患者姓名", "病人姓名", "患儿姓名", "联系人", "联系人姓名", "家属姓名", "监护人", "name",
                     "patientname", "fullname", "firstname", "lastname", "surname", "contact", "contactname",
                     "nextofkin"), "PERSON"),
    **dict.fromkeys(("身份证号", "身份证", "身份证号码", "证件号", "证件号码", "idcard", "idnumber", "ssn", "nationalid"),
                    "ID_CARD"),
    **dict.fromkeys(("联系电话", "电话", "手机", "手机号", "手机号码", "电话号码", "联系方式", "家属电话", "phone", "telephone",
                     "mobile", "tel", "phonenumber", "contactphone"), "PHONE"),
    **dict.fromkeys(("住址", "地址", "家庭住址", "现住址", "户籍地址", "通讯地址", "居住地址", "address", "homeaddress",
                     "street", "zipcode", "postcode", "邮编"), "ADDRESS"),
    **dict.fromkeys(("出生日期", "生日", "birthdate", "dateofbirth", "dob", "birthday"), "DATE"),
    **dict.fromkeys(("邮箱", "电子邮箱", "email", "mail"), "EMAIL"),
    **dict.fromkeys(("医保卡号", "医保号", "社保卡号", "insuranceno", "insurancenumber"), "INSURANCE_NO"),
    **dict.fromkeys(("病案号", "住院号", "门诊号", "病历号", "就诊卡号", "患者id", "病人id", "patientid", "patient", "mrn",
                     "medicalrecordnumber", "recordno", "admissionno", "visitid"), "MEDICAL_RECORD_NO"),
}
# Identifier columns that key a patient's records: kept as a keyed pseudonym (HMAC with the user's
# secret) so patient-disjoint splits still work, never as the raw number.
KEY_COLUMNS = frozenset({"病案号", "住院号", "门诊号", "病历号", "就诊卡号", "患者id", "病人id", "patientid", "patient",
                         "mrn", "medicalrecordnumber", "recordno", "admissionno", "visitid"})
# Columns medcurate itself writes: provenance and the deid stamp.
METADATA_COLUMNS = frozenset({"source", "deid"})


def column_key(name: str) -> str:
    """patient_id, Patient ID, patient-id -> patientid; 身份证号 stays."""
    return re.sub(r"[\s_\-.]", "", str(name)).lower()


def identifier_columns(extra: Iterable[str] = ()) -> dict[str, str]:
    known = dict(IDENTIFIER_COLUMNS)
    known.update({column_key(name): "IDENTIFIER" for name in extra})
    return known


def classify(name: str, known: dict[str, str]) -> str | None:
    """'pseudonymise' for a patient/record key column, 'drop' for another identifier column, else None."""
    key = column_key(name)
    if key not in known:
        return None
    return "pseudonymise" if key in KEY_COLUMNS else "drop"
