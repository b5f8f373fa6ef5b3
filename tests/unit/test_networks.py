from hypothesis import given
from hypothesis import strategies as st

from advocacy_common.networks import RULES, Network, intent_url, over_limit, text_length


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300))
def test_length_is_code_points_without_links(text: str) -> None:
    if "http" not in text:
        assert text_length(Network.x, text) == len(text)
        assert text_length(Network.linkedin, text) == len(text)


@given(st.from_regex(r"https://[a-z]{1,60}\.com/[a-z0-9]{0,200}", fullmatch=True))
def test_x_counts_any_link_as_23(url: str) -> None:
    assert text_length(Network.x, f"read {url}") == len("read ") + 23


def test_over_limit_counts_the_appended_link() -> None:
    text = "a" * 256
    assert over_limit(Network.x, text) == 0
    assert over_limit(Network.x, text, extra_link="https://adv.example/r/abcdefghij") == 0  # 256 + 1 + 23 = 280
    assert over_limit(Network.x, text + "b", extra_link="https://adv.example/r/abcdefghij") == 1


def test_intent_urls_exist_for_networks_that_have_them() -> None:
    for network, rules in RULES.items():
        url = intent_url(network, "https://l.example/r/abc", "hello world")
        assert (url is not None) == rules.has_intent, network
    x = intent_url(Network.x, "https://l.example/r/abc", "hi there")
    assert x is not None and "text=hi+there" in x and "url=https%3A%2F%2Fl.example%2Fr%2Fabc" in x
