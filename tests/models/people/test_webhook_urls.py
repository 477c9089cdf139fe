"""The SSRF guard on its own: which addresses a webhook may call, and how URLs are read."""

from __future__ import annotations

import ipaddress

import pytest

from models.people.webhook_urls import UnsafeUrl, parse, refusal, vet


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("64:ff9b::7f00:1", "loopback"),  # NAT64
        ("2002:7f00:1::", "loopback"),  # 6to4
        ("0.0.0.0", "unspecified"),  # noqa: S104
        ("0.1.2.3", "unspecified"),
        ("::", "unspecified"),
        ("10.0.0.1", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("fd12:3456::1", "private"),
        ("::ffff:10.0.0.1", "private"),
        ("169.254.169.254", "link-local (cloud metadata)"),
        ("fe80::1", "link-local (cloud metadata)"),
        ("100.64.0.1", "shared (carrier-grade NAT)"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("192.0.2.10", "reserved"),  # documentation
        ("198.18.0.1", "reserved"),  # benchmarking
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("2001:db8::1", "reserved"),
    ],
)
def test_internal_addresses_are_refused_with_a_reason(address: str, reason: str) -> None:
    assert refusal(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "172.32.0.1", "2606:4700:4700::1111"]
)
def test_public_addresses_pass(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


def test_the_loopback_setting_admits_loopback_and_nothing_else() -> None:
    for address in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
        assert refusal(ipaddress.ip_address(address), allow_loopback=True) is None
    for address in ("10.0.0.1", "169.254.169.254", "0.0.0.0", "fe80::1"):  # noqa: S104
        assert refusal(ipaddress.ip_address(address), allow_loopback=True) is not None


def test_urls_are_read_into_scheme_host_port_and_path() -> None:
    assert parse("HTTPS://Hooks.Example.COM./a/b?x=1") == (
        "https",
        "hooks.example.com",
        443,
        "/a/b?x=1",
    )
    assert parse("http://[2606:4700::1111]:8080") == ("http", "2606:4700::1111", 8080, "/")
    assert parse("https://bücher.example/") == ("https", "xn--bcher-kva.example", 443, "/")


@pytest.mark.parametrize(
    "url",
    [
        "gopher://93.184.216.34/",
        "javascript:alert(1)",
        "http://a@93.184.216.34/",
        "http://93.184.216.34:99999/",
        "http://93.184.216.34/a b",
        "http://93.184.216.34/\r\nX: y",
        "http://",
        "http://93.184.216.34/" + "a" * 2048,
    ],
)
def test_unusable_urls_are_refused(url: str) -> None:
    with pytest.raises(UnsafeUrl) as refused:
        vet(url)
    assert refused.value.status == 422
    assert refused.value.errors == {"json": {"url": [refused.value.message]}}


def test_integer_and_short_forms_of_loopback_are_caught_after_resolution() -> None:
    for url in ("http://2130706433/", "http://127.1/", "http://0x7f.1/"):
        with pytest.raises(UnsafeUrl, match="loopback"):
            vet(url)
    assert vet("http://127.1:81/x", allow_loopback=True).addresses == ("127.0.0.1",)
