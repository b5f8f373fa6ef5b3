from advocacy_common.textguard import nul_path


def test_finds_the_first_string_holding_a_nul() -> None:
    assert nul_path({"title": "ok", "captions": {"x": "bad\x00"}}) == ("captions", "x")
    assert nul_path({"tags": ["a", "b\x00"]}) == ("tags", "1")
    assert nul_path({"a\x00b": 1}) == ("a\\u0000b",)
    assert nul_path({"title": "fine", "n": 3, "tags": ["x"]}) is None
