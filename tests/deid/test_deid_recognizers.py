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


class TestNumberVariants:
    @pytest.mark.parametrize("text, number", [("电话：138 1234 5678", "138 1234 5678"), ("手机138-1234-5678", "138-1234-5678"),
                                              ("联系电话１３８１２３４５６７８。", "１３８１２３４５６７８"),
                                              ("电话一三八一二三四五六七八", "一三八一二三四五六七八")])
    def test_phone_variants(self, text, number):
        assert found(text, "PHONE") == [number]

    def test_id_card_with_spaces_and_dashes(self):
        number = valid_id("11010519491231002")
        for spaced in (f"{number[:6]} {number[6:14]} {number[14:]}", f"{number[:6]}-{number[6:14]}-{number[14:]}"):
            assert found(f"身份证号：{spaced}", "ID_CARD") == [spaced]

    @pytest.mark.parametrize("number", ["A-12-3456", "No.8812345", "OP2023/00876", "ZY0012345"])
    def test_record_numbers_with_letters(self, number):
        assert found(f"病案号：{number}，", "MEDICAL_RECORD_NO") == [number]
        assert found(f"复印件 {number} 存档", "MEDICAL_RECORD_NO") == [number]


class TestAge:
    def test_over_89_only(self):
        assert found("患者，女，93岁，", "AGE") == ["93"]
        assert found("患者，女，九十五岁，", "AGE") == ["九十五"]
        assert found("患者，男，一百零一岁", "AGE") == ["一百零一"]
        assert found("患者，男，八十九岁", "AGE") == []
        assert found("年龄：101", "AGE") == ["101"]
        assert found("患者，男，89岁", "AGE") == []


class TestDate:
    @pytest.mark.parametrize("date", ["2021年3月5日", "2021-03-05", "2021.3.5", "2021/03/05", "20210305"])
    def test_identity_event_dates(self, date):
        assert found(f"出生日期：{date}，", "DATE") == [date]
        assert found(f"于{date}入院。", "DATE") == [date]

    def test_signature_line_date(self):
        assert found("记录医师：李某（住院医师） 2023.12.22", "DATE") == ["2023.12.22"]

    def test_treatment_course_dates_are_identifiers_by_default(self):
        text = "后于2017年3月14日予以化疗，3天前出现发热，病程2年，ICD编码I10、K35.8。"
        assert masked(text) == "后于[DATE]予以化疗，3天前出现发热，病程2年，ICD编码I10、K35.8。"

    @pytest.mark.parametrize("date", [
        "2016-10-29；11：12", "2016年7月1日16时45分", "2017-1-18(09:37)", "2016--10--29", "2016-07-01，16：45",
        "二〇一六年七月二十八日", "一九四九年十二月三十一日", "2016年8月", "2014/08/3110时46分", "2016.8.19 17:02",
        "2015年3月28日1时13分", "2017年8月5日，08：32", "2016/01/03；12：45", "2016 - 10 - 29", "2016年10月29日上午10时",
        "２０１６年１０月２９日", "2018-09-23日",
    ])
    def test_safe_harbor_forms(self, date):
        assert found(f"患者于{date}入院。", "DATE") == [date]

    @pytest.mark.parametrize("text, date", [("7月28日入院", "7月28日"), ("10月21号复诊", "10月21号"),
                                            ("于十二月三十一日出院", "十二月三十一日")])
    def test_month_day_without_year(self, text, date):
        assert found(text, "DATE") == [date]

    def test_years_durations_times_and_ages_are_kept(self):
        text = "2016年起病，病程3天，2周后复查，每日8:00服药，T 36.5℃，BP 120/80mmHg，1.5g bid，患者65岁。"
        assert masked(text) == text


class TestAddress:
    @pytest.mark.parametrize("text, address", [
        ("男，56岁，农民，双滦区某某村人，因“胸痛2天”入院", "双滦区某某村"),
        ("现住某某乡某某村2组。主诉“咳嗽”", "某某乡某某村2组"),
        ("女，60岁，汉族，平泉县七沟镇西井村人，主因“腹痛”入院", "平泉县七沟镇西井村"),
        ("家住兴隆县半壁山镇。因“头晕”来诊", "兴隆县半壁山镇"),
        ("现住址：青龙县木头凳镇三道河村4组，主诉“心悸”", "青龙县木头凳镇三道河村4组"),
        ("农民，平泉县黄各庄镇人，主诉“胸闷”", "平泉县黄各庄镇"), ("重庆市渝中区人，", "重庆市渝中区"),
    ])
    def test_rural_and_home_village(self, text, address):
        assert found(text, "ADDRESS") == [address]

    def test_words_for_country_and_town_are_not_addresses(self):
        assert found("发达国家，特别是农村和边远地区发病率仍高，城乡差别明显。", "ADDRESS") == []
        assert found("河北人，", "ADDRESS") == []  # a province alone is allowed by Safe Harbor

    def test_span_stops_before_the_chief_complaint(self):
        text = "现住丰南区黄各庄镇主诉反复咳嗽咳痰三年加重一周伴发热"
        spans = found(text, "ADDRESS")
        assert spans and all("咳" not in value for value in spans)

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

    @pytest.mark.parametrize("text, name", [
        ("卢振华，男性，66岁，教师", "卢振华"), ("&quot;>患者石晓东，男性，45岁", "石晓东"), ("p;岳红梅，女，33岁", "岳红梅"),
        ("【一般项目】温建平，男，70岁", "温建平"), ("&nbsp;患者柴雪，女，41岁", "柴雪"), ("其子孟凡宇签字同意。", "孟凡宇"),
        ("其女阎小青陪同就诊。", "阎小青"), ("家属邵立群签字同意。", "邵立群"), ("联系人：车永红，电话", "车永红"),
        ("姚国栋于2016年3月5日入院", "姚国栋"), ("魏春燕因“腹痛2天”入院", "魏春燕"),
        ("由其子张三代诉病史", "张三"), ("患者之女赵月陪同", "赵月"), ("籍天明，男，45岁", "籍天明"),
        ("家属（儿子）王建国签字", "王建国"), ("病人周九因“发热”入院", "周九"), ("患者阿依古丽·买买提，女，40岁", "阿依古丽·买买提"),
    ])
    def test_names_at_note_start_after_markup_and_role_words(self, text, name):
        assert found(text, "PERSON") == [name]

    def test_zero_width_characters_inside_a_name(self):
        text = "患者韦\u200b立\u200c新，男，50岁"
        assert masked(text) == "患者[PERSON]，男，50岁"

    @pytest.mark.parametrize("text, name", [("The patient Zhang Wei was admitted.", "Zhang Wei"),
                                            ("家属 WANG Xiaoming 陪同", "WANG Xiaoming"),
                                            ("contact Xiaohong Li today", "Xiaohong Li")])
    def test_pinyin_names(self, text, name):
        assert found(text, "PERSON") == [name]

    def test_english_words_are_not_pinyin_names(self):
        assert found("The Patient Was Seen In Clinic With Dr Smith", "PERSON") == []

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
