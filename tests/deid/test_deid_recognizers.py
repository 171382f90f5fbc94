"""Each recognizer on its own: what it must find, and the clinical look-alikes it must leave alone."""
from __future__ import annotations

import pytest

from medcurate.deid.engine import Deidentifier
from medcurate.deid.recognizers import REGISTRY, id_card_checksum_ok, luhn_ok

DEID = Deidentifier("mask")


def found(text: str, identifier_type: str | None = None) -> list[str]:
    return [text[s.start:s.end] for s in DEID.scan(text) if identifier_type is None or s.type == identifier_type]


def masked(text: str) -> str:
    return DEID.deidentify(text).text


def valid_id(body17: str) -> str:
    return next(body17 + c for c in "0123456789X" if id_card_checksum_ok(body17 + c))


class TestIdCard:
    def test_checksum_valid_18_digit_found_anywhere(self):
        number = valid_id("32010619880512301")
        assert found(f"持证人{number}已登记", "ID_CARD") == [number]
        assert found(f"身份证号码为{number[:-1]}x".replace(number[:-1] + "x", number.lower()), "ID_CARD")

    def test_invalid_checksum_needs_context(self):
        number = valid_id("32010619880512301")
        wrong = number[:-1] + ("1" if number[-1] != "1" else "2")
        assert found(f"编号{wrong}。", "ID_CARD") == []
        assert found(f"身份证：{wrong}", "ID_CARD") == [wrong]

    def test_fifteen_digit_old_form_with_context(self):
        assert found("身份证号 110105710923582", "ID_CARD") == ["110105710923582"]

    def test_digits_glued_to_longer_numbers_are_not_ids(self):
        number = valid_id("32010619880512301")
        assert found(f"序列{number}9", "ID_CARD") == []


class TestPhone:
    @pytest.mark.parametrize("phone", ["13912345678", "139-1234-5678", "139 1234 5678", "+86 13912345678",
                                       "(010)62751234", "（0571）8765432", "021-64041990", "0755-2345678"])
    def test_formats(self, phone):
        assert found(f"联系电话：{phone}。", "PHONE") == [phone]
        assert found(f"有事请找{phone}", "PHONE") == [phone]

    def test_lab_values_and_pressures_are_not_phones(self):
        assert found("血压140/90mmHg，WBC 12.5×10^9/L，血小板 230×10^9/L，尿比重1.015", "PHONE") == []


class TestMedicalRecordNumber:
    @pytest.mark.parametrize("label", ["住院号", "门诊号：", "病案号 ", "病历号:", "ID号："])
    def test_labelled(self, label):
        assert found(f"{label}20230456781，", "MEDICAL_RECORD_NO") == ["20230456781"]

    def test_words_containing_id_are_not_labels(self):
        assert found("PID是1997年第7次修订的", "MEDICAL_RECORD_NO") == []


class TestInsuranceNumber:
    def test_labelled_with_letters(self):
        assert found("医保卡号H219561973566，于今日入院", "INSURANCE_NO") == ["H219561973566"]
        assert found("社保卡号：1234567890", "INSURANCE_NO") == ["1234567890"]


class TestBankCard:
    def test_luhn_valid_with_context(self):
        assert luhn_ok("6222021234567890128")
        assert found("银行卡号：6222 0212 3456 7890 128", "BANK_CARD") == ["6222 0212 3456 7890 128"]

    def test_luhn_invalid_is_ignored(self):
        assert found("银行卡号：6222021234567890123", "BANK_CARD") == []


class TestEmailUrlIp:
    def test_email(self):
        assert found("邮箱：zhang.wei_85@hospital-mail.com.cn。", "EMAIL") == ["zhang.wei_85@hospital-mail.com.cn"]

    def test_url(self):
        assert found("个人主页https://weibo.com/u/12345，", "URL") == ["https://weibo.com/u/12345"]

    def test_ip_but_not_versions_or_doses(self):
        assert found("登录IP 192.168.10.25 异常", "IP") == ["192.168.10.25"]
        assert found("剂量0.5.1次", "IP") == []


class TestLicensePlate:
    def test_plate(self):
        assert found("车牌号京A12345，", "LICENSE_PLATE") == ["京A12345"]
        assert found("车牌粤B·D12345", "LICENSE_PLATE") == ["粤B·D12345"]

    def test_letters_only_codes_are_not_plates(self):
        assert found("川ABCDEF", "LICENSE_PLATE") == []


class TestAge:
    def test_over_89_only(self):
        assert found("患者，女，93岁，", "AGE") == ["93岁"]
        assert found("年龄：101", "AGE") == ["101"]
        assert found("患者，男，89岁", "AGE") == []


class TestDate:
    @pytest.mark.parametrize("date", ["2021年3月5日", "2021-03-05", "2021.3.5", "2021/03/05", "20210305"])
    def test_identity_event_dates(self, date):
        assert found(f"出生日期：{date}，", "DATE") == [date]
        assert found(f"于{date}入院。", "DATE") == [date]

    def test_signature_line_date(self):
        assert found("记录医师：李某（住院医师） 2023.12.22", "DATE") == ["2023.12.22"]

    def test_treatment_course_dates_and_durations_are_kept(self):
        text = "后于2017年3月14日予以化疗，3天前出现发热，病程2年，ICD编码I10、K35.8。"
        assert masked(text) == text


class TestAddress:
    def test_labelled(self):
        text = "住址：浙江省杭州市西湖区文三路90号东方小区3幢2单元501室，联系电话：13912345678"
        assert found(text, "ADDRESS") == ["浙江省杭州市西湖区文三路90号东方小区3幢2单元501室"]

    def test_unlabelled_chain_with_numbers(self):
        assert found("患者家住上海市徐汇区漕溪北路88弄5号1203室，平素体健", "ADDRESS") == ["上海市徐汇区漕溪北路88弄5号1203室"]

    def test_anatomy_is_not_an_address(self):
        assert found("右下腹区压痛，第3肋间隙", "ADDRESS") == []


class TestOrganization:
    def test_employer_and_school(self):
        assert found("工作单位：华东电力设计有限公司，", "ORGANIZATION") == ["华东电力设计有限公司"]
        assert found("就读于实验中学，", "ORGANIZATION") == ["实验中学"]

    def test_the_hospital_is_not_removed(self):
        assert found("工作单位：市第一人民医院", "ORGANIZATION") == []
        assert masked("转入我院心内科，以肺叶为单位的炎症") == "转入我院心内科，以肺叶为单位的炎症"


class TestPerson:
    @pytest.mark.parametrize("text, name", [
        ("姓名：欧阳建国  性别：男", "欧阳建国"), ("患者陈敏兰，女，78岁", "陈敏兰"), ("患者吴磊自述头痛", "吴磊"),
        ("家属刘建（兄弟）陪同", "刘建"), ("记录医师：汪桐华（主治医师）", "汪桐华"), ("。邓强英家属诉病情加重", "邓强英"),
        ("上官燕，女，32岁，因发热就诊", "上官燕"), ("患者姓名为司马懿；", "司马懿"),
    ])
    def test_names_by_label_follower_and_compound_surname(self, text, name):
        assert name in found(text, "PERSON")

    def test_surname_with_title(self):
        assert found("，张医生建议复查", "PERSON") == ["张"]
        assert found("查房时刘主任指出", "PERSON") == ["刘"]

    def test_repeated_mentions_are_all_found(self):
        assert found("患者赵丽华，女。赵丽华自述", "PERSON") == ["赵丽华", "赵丽华"]

    @pytest.mark.parametrize("text", [
        "予黄芪、金银花、白术、王不留行、马齿苋、龙胆、何首乌煎服。", "遵医嘱规律服药，谢谢医生。",
        "患者于今日上午出现腹痛。", "患者无明显诱因出现胸闷，常规检查未见异常。", "阿莫西林胶囊0.5g口服。",
    ])
    def test_herbs_drugs_and_clinical_phrases_are_not_names(self, text):
        assert found(text, "PERSON") == []


def test_every_identifier_type_has_a_recognizer():
    assert set(REGISTRY) == {"PERSON", "ID_CARD", "PHONE", "ADDRESS", "DATE", "MEDICAL_RECORD_NO", "INSURANCE_NO",
                             "EMAIL", "ORGANIZATION", "URL", "IP", "BANK_CARD", "LICENSE_PLATE", "AGE"}
