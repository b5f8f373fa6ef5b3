import pytest

from advocacy_common.ssrf import UnsafeURL, check_url_shape, resolve_public


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8080/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://0x7f000001/",
        "http://2130706433/",
        "http://127.1/",
        "http://10.0.0.5/",
        "http://192.168.1.1/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
    ],
)
async def test_internal_addresses_are_refused_after_resolution(url: str) -> None:
    with pytest.raises(UnsafeURL):
        await resolve_public(url)


@pytest.mark.parametrize(
    "url",
    ["javascript:alert(1)", "file:///etc/passwd", "ftp://example.com/", "https://user:pw@example.com/", "http:///x"],
)
def test_bad_shapes_are_refused_without_dns(url: str) -> None:
    with pytest.raises(UnsafeURL):
        check_url_shape(url)


async def test_public_literal_address_is_allowed() -> None:
    assert await resolve_public("https://93.184.215.14/hook") == ["93.184.215.14"]
