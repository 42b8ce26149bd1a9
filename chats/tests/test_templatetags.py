from chats.templatetags.chat import tps


def test_speeds_read_as_people_read_them_with_thousands_grouped_and_no_false_precision():
    assert tps(13519.6) == "13,520"
    assert tps(100) == "100"
    assert tps(42.34) == "42.3"
    assert tps(None) == "" and tps(0) == ""
