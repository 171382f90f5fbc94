"""Word lists the recognizers share: surnames, context words, characters that never sit in a name.

General knowledge of Chinese names and clinical documents only; nothing here is taken
from an evaluation set.
"""
from __future__ import annotations

# Common single-character surnames (the Hundred Family Surnames and the most frequent
# modern ones), then compound surnames.
SINGLE_SURNAMES = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
    "姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施"
    "文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷"
    "盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷"
    "晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝官封谈匡鞠惠荆"
    "乐冀郁胥南班储原栗燕楚鄢劳谌奚皮粟冼蔺楼盘满闻位厉伊仝区郜海阚花权强帅屠豆朴盖练廉禹井祖漆巴丰支卿国狄平"
    "计索宣晋相初门云容敬来扈晁芮都普阙浦戈伏鹿薄邸雍辜羊阿乌母裘亓修邰赫杭况那宿鲜印逯隆茹诸战慕危玉银亢嵇公"
    "哈湛宾戎勾茅利於呼居揭干但尉冶斯元束檀衣信展阴昝智幸奉植衡富尧闭由"
    "傅阎赖萧韶殳贲甯苍双莘贡逄扶堵宰郦却璩濮寿通别充习宦鱼慎庾终暨步弘广禄东沃越夔厍融訾空毋乜养须巢蒯后红竺益桓钮滑蔚邴糜郗"
    "籍钭隗宓蓬仰秋暴甄羿汲弓牧芮荀怀蓟鬱邬昝贝臧伏酆郏璩扈晁莘逄厍訾乜鞠蒯郗钮缪嵇邢滑裴荣羊於封储靳糜宣贲郁单杭洪包诸左石崔吉龚程"
)
COMPOUND_SURNAMES = frozenset({
    "欧阳", "上官", "司马", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "令狐", "司徒", "夏侯", "长孙", "宇文",
    "轩辕", "端木", "澹台", "南宫", "西门", "独孤", "百里", "呼延", "闻人", "万俟", "司空", "钟离", "宗政", "濮阳",
    "淳于", "单于", "太叔", "申屠", "赫连", "拓跋", "东郭", "公冶", "左丘", "第五", "谷梁", "乐正", "梁丘", "段干",
})

# Characters that do not occur as the given-name part of a person's name in running
# clinical text: function words, time words, clinical nouns. A candidate containing
# one is not a name.
NOT_IN_GIVEN_NAME = frozenset(
    "的了是在有和与及或因于为等将被把对从向到自诉述说称男女岁日年周次个例名位号院科室病症痛热咳今昨前后上下"
    "左右内外无未不已再又也都就而且但并其此该本每各某患者医护检查治疗手术药物服用出现伴见示行予给及约余第"
    "既往现史既否认体重型性期度区部侧肢腹胸头颈腰背眼耳鼻口舌牙皮肤肝脾肺肾胃肠血尿便脉压温呼吸查诊断术后"
    "属述诉仍可能需要分别一步观察复再次经过以来近来前来入出转送收住院门急重轻缓急慢性反复持续间断突逐渐显"
)

# Right-hand contexts after a name: relations, titles, verbs of reporting.
NAME_FOLLOWERS = (
    "（主任医师", "（副主任医师", "（主治医师", "（住院医师", "（医师", "（护士", "（实习医师", "（进修医师",
    "医生", "大夫", "主任", "护士", "护师", "教授", "老师", "先生", "女士", "同志",
    "家属", "自述", "自诉", "诉", "陪同", "签字", "签名", "代诉", "代述", "知情同意", "同意", "之子", "之女", "之母", "之父", "之妻", "之夫",
    "（女儿", "（儿子", "（母亲", "（父亲", "（配偶", "（兄弟", "（姐妹", "（妻子", "（丈夫", "（孙子", "（孙女",
    "（身份证", "（男", "（女", "，男", "，女", ",男", ",女", " 男", " 女", "，性别", "，年龄", "，汉族", "因", "于",
)
# Left-hand labels before a name.
NAME_LABELS = (
    "患者姓名", "病人姓名", "患儿姓名", "姓名", "联系人", "紧急联系人", "家属", "监护人", "代理人", "委托人",
    "记录医师", "记录者", "记录人", "经治医师", "主治医师", "住院医师", "主任医师", "副主任医师", "责任护士",
    "报告医师", "报告医生", "审核医师", "审核者", "检查者", "操作者", "签名", "医师签名", "患者签名", "医师", "医生",
    "护士", "患者", "病人", "患儿", "产妇", "孕妇", "病员", "伤者",
    "其子", "其女", "其夫", "其妻", "其父", "其母", "其兄", "其弟", "其姐", "其妹", "其孙", "其孙女", "其儿子", "其女儿",
    "其丈夫", "其妻子", "其配偶", "陪同人", "陪护", "家属人", "联系人姓名", "父亲", "母亲", "配偶", "妻子", "丈夫", "儿子", "女儿", "哥哥", "姐姐", "弟弟", "妹妹", "爱人", "之夫", "之妻", "之子", "之女", "之母", "之父",
)
# Punctuation and spaces that end a name.
NAME_BOUNDARY = frozenset("，,、；;。.：:（(）) \t\n\r\u3000“”\"'！!？?/")

PROVINCES = (
    "北京", "天津", "上海", "重庆", "河北", "山西", "辽宁", "吉林", "黑龙江", "江苏", "浙江", "安徽", "福建", "江西",
    "山东", "河南", "湖北", "湖南", "广东", "海南", "四川", "贵州", "云南", "陕西", "甘肃", "青海", "台湾", "内蒙古",
    "广西", "西藏", "宁夏", "新疆", "香港", "澳门",
)

# Institutions that are the care setting, never an ORGANIZATION to remove.
CARE_SETTING_SUFFIXES = ("医院", "卫生院", "诊所", "门诊部", "卫生服务中心", "保健院", "疾控中心", "急救中心", "科")

# Words that look like a surname plus a given name (and that jieba even tags as names),
# common in clinical and everyday text.
NAME_LOOKALIKES = frozenset({
    "谢谢", "于今", "何首乌", "丁香", "龙胆", "田七", "杨梅", "黄连", "陈皮", "金银花", "白术", "马齿苋", "王不留行",
    "高兴", "方便", "安定", "常规", "平时", "马上", "白天", "明确", "成功", "周期", "文献", "江湖", "黄芪", "石膏",
    "安静", "平安", "安全", "常大", "区别", "应平卧",
})
# Titles after a surname: weak evidence on their own (谢谢医生), so the candidate must not be a common word.
TITLE_FOLLOWERS = ("医生", "大夫", "主任", "护士", "护师", "教授", "老师", "先生", "女士", "同志")

# Characters that do not occur in a Chinese place name but do in the clinical prose around one
# (function words, body parts, symptoms, care words): an address chain never runs through them.
NOT_IN_PLACE_NAME = frozenset(
    "的了是在有与及或因于为等将被把对从到诉述说称患者医护查治疗术药服用出现伴见示予给约第既往史否认"
    "体性期度肢腹胸颈腰背眼耳鼻舌肤肝脾肺肾胃肠血尿便脉压吸诊断病症痛咳痰肿瘤癌住入院室人岁男女婚主现今昨近已未不再"
    "又也而但该每"
)

# Pinyin spellings of common surnames, for names written in Latin letters (Zhang Wei, WANG Fang).
PINYIN_SURNAMES = frozenset(
    "Wang Li Zhang Liu Chen Yang Huang Zhao Wu Zhou Xu Sun Ma Zhu Hu Guo He Gao Lin Luo Zheng Liang Xie Song Tang Han"
    " Feng Deng Cao Peng Zeng Xiao Tian Dong Yuan Pan Yu Jiang Cai Du Ye Cheng Su Wei Lu Ding Ren Shen Yao Cui Zhong"
    " Tan Fan Jin Shi Liao Jia Xia Fu Fang Bai Zou Meng Xiong Qin Qiu Yin Xue Yan Duan Lei Hou Long Tao Gu Mao Hao"
    " Gong Shao Wan Qian Dai Mo Kong Xiang Chang Kang Shu Niu Qi Yi Qiao Zhuang Zhan Lai Lv Lyu Ouyang Situ Zhuge"
    " Shangguan Murong Ning Bao Hong Ge Xing An Nie Zhuo Mei Sheng Geng Guan Lan Jiao Ji Rao Mu Gan Zhai Tong Ling"
    .split()
)
