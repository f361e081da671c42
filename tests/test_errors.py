from sbvae.errors import first_line


def test_first_line_is_the_first_line_of_the_message():
    assert first_line(ValueError("  bad value\nsecond line\n")) == "bad value"


def test_first_line_of_an_empty_message_is_the_type_name():
    assert first_line(KeyError()) == "KeyError"
    assert first_line(RuntimeError("  \n")) == "RuntimeError"
