from conveyor.storage.names import MAX_NAME_BYTES, safe_file_name


def test_keeps_what_people_recognise() -> None:
    assert safe_file_name("call 12; 'final' \"v2\".wav") == "call 12; 'final' \"v2\".wav"
    assert safe_file_name("Grüße · 電話.mp3") == "Grüße · 電話.mp3"


def test_never_a_path() -> None:
    assert safe_file_name("../../etc/passwd") == "passwd"
    assert safe_file_name("..\\..\\boot.ini") == "boot.ini"
    assert safe_file_name("..") == "input"
    assert safe_file_name(".hidden") == "hidden"
    assert safe_file_name("a\x00b\nc.txt") == "a_b_c.txt"
    assert safe_file_name("") == "input"


def test_long_names_are_cut_keeping_the_suffix() -> None:
    name = safe_file_name("é" * 400 + ".flac")
    assert name.endswith(".flac") and len(name.encode()) <= MAX_NAME_BYTES
