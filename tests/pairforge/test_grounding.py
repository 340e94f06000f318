from __future__ import annotations

import pytest

from pairforge.grounding import chinese_numbers, find_unsupported

# Shaped like the real passages behind issue 20's examples (an encyclopedia paragraph each).
BRIDGE = (
    "赵州桥位于河北省石家庄市赵县城南洨河之上，建于隋朝大业年间（605年—618年），由匠师李春设计建造，"
    "距今已有1400年历史。"
)
MARS = "2020年7月23日，天问一号火星探测器在文昌航天发射场由长征五号运载火箭发射升空。“祝融号”火星车于次年登陆。"
CITY = "嘉义市属热带季风气候，冬季受东北季风影响，气温常常降到摄氏十度以下，年平均气温约为23℃。"
BOOK = (
    "《红楼梦》又名《石头记》，作者曹雪芹。英文译本The Story of the Stone由David Hawkes翻译，"
    "共五卷，印数达一万二千册。"
)


@pytest.mark.parametrize(
    ("text", "passage", "missing"),
    [
        # dropped: tokens the passage does not hold
        ("赵州桥位于河北省石家庄市赵县的aston河之上。", BRIDGE, ["aston"]),  # issue 20's invented word
        ("2021年7月，中国首次火星探测任务‘天问一号’发射升空。", MARS, ["2021"]),  # the passage says 2020
        ("二〇二一年天问一号发射升空。", MARS, ["2021"]),  # a year in Chinese digits
        ("赵州桥距今已有1300年历史。", BRIDGE, ["1300"]),
        ("赵州桥由李春于606年设计。", BRIDGE, ["606"]),  # 605 and 618 are there, 606 is not
        ("天问一号由“长征七号”送入太空。", MARS, ["《长征七号》"]),  # a quoted name not in the passage
        ("《红楼梦》的英文译本叫《The Dream》。", BOOK, ["dream", "《the dream》"]),
        ("嘉义市年平均气温约为25℃。", CITY, ["25"]),
        ("天问一号于2020年7月25日发射。", MARS, ["25"]),
        # kept: the passage holds the same token in another form
        ("2020年，天问一号发射升空。", MARS, []),  # 2020年 vs 2020
        ("二〇二〇年天问一号发射升空。", MARS, []),
        ("２０２０年７月天问一号发射。", MARS, []),  # full-width digits
        ("嘉义市冬季气温常低于10℃。", CITY, []),  # 十 in the passage
        ("赵州桥建于公元605到618年间。", BRIDGE, []),
        ("天问一号在7月发射。", MARS, []),
        ("《石头记》的作者是曹雪芹。", BOOK, []),
        ("红楼梦英译本的译者是DAVID HAWKES。", BOOK, []),  # case-folded
        ("红楼梦的英译本共5卷。", BOOK, []),  # 五
        ("红楼梦英译本印了12000册。", BOOK, []),  # 一万二千
        ("红楼梦英译本印了12,000册。", BOOK, []),  # thousands separator
        ("“祝融号”火星车次年登陆。", MARS, []),  # a quoted name the passage holds
        ("赵州桥是由李春设计的一座古桥。", BRIDGE, []),  # no checkable token at all
        ("赵州桥建成至今一千零二十多年了。", BRIDGE, []),  # positional numerals in the text are not checked
        ("赵州桥孤零零地立在河上。", BRIDGE, []),  # 零零 is not a number (STS-B)
        ("天问一号说：“这是一次很长很长的引用并不是名字不用检查。”", MARS, []),  # a long quotation, not a name
    ],
)
def test_find_unsupported_table(text: str, passage: str, missing: list[str]) -> None:
    assert find_unsupported(text, passage) == missing


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("二〇二〇年", ["2020"]),
        ("两千零二十年", ["2020"]),
        ("第二十九届", ["29"]),
        ("三万五千人", ["35000"]),
        ("十五", ["15"]),
        ("一九九八年", ["1998"]),
        ("统一", ["1"]),  # generous on the passage side: extra support, never a wrong drop
        ("万人", ["10000"]),
        ("没有数字", []),
    ],
)
def test_chinese_numbers_table(text: str, numbers: list[str]) -> None:
    assert chinese_numbers(text) == numbers


def test_scaled_numbers_are_supported() -> None:
    assert find_unsupported("人口约15000人。", "该县人口约1.5万人。") == []
    assert find_unsupported("人口约16000人。", "该县人口约1.5万人。") == ["16000"]
