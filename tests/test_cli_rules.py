"""`dni-engine match` and `dni-engine lint` on the example pools, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from dni_engine.cli import cli
from dni_engine.schema import load_pools
from tests.conftest import EXAMPLES

SITE = str(EXAMPLES / "site" / "pools.json")
VENDOR = sorted(str(p) for p in (EXAMPLES / "pools").glob("*.response.json"))
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_site_example_is_valid_and_realistic() -> None:
    pools = load_pools(Path(SITE).read_bytes())
    assert len(pools) == 6
    assert all(n.startswith("+44117") for p in pools for n in p.e164_numbers)  # type: ignore[union-attr]


def test_match_a_paid_visit() -> None:
    code, out = run(
        "match",
        SITE,
        "--url",
        "https://shop.example/?gclid=abc",
        "--referrer",
        "https://www.google.co.uk/",
    )
    assert code == 0, out
    assert out.splitlines() == [
        "pool      Google Ads (key 41001, pool [0])",
        "source    0 (referrer_domain Any)",
        "trigger   gclid=*  (1 condition)",
        "referrer  Google",
        "paid      yes",
    ]


def test_match_each_pool_of_the_site() -> None:
    visits = {
        "Microsoft Ads": ("https://shop.example/?msclkid=1", "https://www.bing.com/"),
        "Winter tyres campaign": ("https://shop.example/?utm_campaign=wintertires", ""),
        "Google organic": ("https://shop.example/tyres", "https://www.google.com/"),
        "Social referrals": ("https://shop.example/", "https://l.instagram.com/"),
        "Website (all other visitors)": ("https://shop.example/", ""),
    }
    for name, (url, referrer) in visits.items():
        args = ["match", SITE, "--url", url, "--json"]
        if referrer:
            args += ["--referrer", referrer]
        code, out = run(*args)
        assert code == 0, out
        assert json.loads(out)["pool_name"] == name


def test_match_json_and_priority() -> None:
    url = "https://shop.example/?gclid=abc&utm_campaign=wintertires"
    code, out = run("match", SITE, "--url", url, "--json")
    assert code == 0
    assert json.loads(out)["pool_name"] == "Google Ads"
    code, out = run("match", SITE, "--url", url, "--json", "--priority", "41003=1")
    assert code == 0
    data = json.loads(out)
    assert data["pool_name"] == "Winter tyres campaign"
    assert data["trigger"] == "utm_campaign=wintertires"
    assert data["paid"] is True


def test_match_with_a_user_agent_checks_for_crawlers() -> None:
    url = "https://shop.example/?gclid=abc"
    code, out = run("match", SITE, "--url", url, "--user-agent", "Googlebot/2.1")
    assert (code, out.strip()) == (0, "no match: the user agent is a crawler")
    code, out = run("match", SITE, "--url", url, "--user-agent", BROWSER)
    assert code == 0
    assert out.startswith("pool      Google Ads")
    code, out = run("match", SITE, "--url", url, "--json", "--user-agent", "Googlebot/2.1")
    assert (code, out.strip()) == (0, "null")


def test_match_explain_on_the_site() -> None:
    code, out = run(
        "match",
        SITE,
        "--url",
        "https://shop.example/?utm_medium=cpc",
        "--referrer",
        "https://www.google.com/",
        "--explain",
    )
    assert code == 0, out
    assert "Result: pool 'Website (all other visitors)' (key 41006)" in out
    assert "track_organic does not apply: the visit is paid (utm_medium=cpc)" in out
    assert "User agent:  not checked" in out
    assert "[4] 'Social referrals' (key 41005): no match" in out


def test_match_explain_on_the_vendor_examples() -> None:
    code, out = run("match", *VENDOR, "--url", "https://shop.example/?gclid=1", "--explain")
    assert code == 0, out
    assert out.count(": lost") == 3
    assert "at step 4, registration order" in out


def test_match_no_match() -> None:
    code, out = run("match", *VENDOR, "--url", "https://shop.example/")
    assert (code, out.strip()) == (0, "no match")


def test_match_bad_priority() -> None:
    code, out = run("match", SITE, "--url", "https://x/", "--priority", "41001")
    assert code == 2
    assert "is not KEY=N" in out
    code, out = run("match", SITE, "--url", "https://x/", "--priority", "nosuch=1")
    assert code == 2  # the option's value names no pool: a usage error
    assert "no pool has the key 'nosuch'" in out


def test_match_invalid_pool_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    code, out = run("match", str(bad), "--url", "https://x/")
    assert code == 1
    assert "the list holds no pools" in out


def test_lint_site_reports_ties_with_example_visits() -> None:
    code, out = run("lint", SITE)
    assert code == 1, out
    assert out.count("[order-tie]") == 2
    assert "?gclid=x&utm_campaign=wintertires" in out
    assert "notice [duplicate-number] +441174960000 is replaced by 6 pools" in out
    assert out.rstrip().endswith("6 pools: 2 warnings, 1 notice")


def test_lint_site_with_priorities_passes_but_strict_fails() -> None:
    code, out = run("lint", SITE, "--priority", "41003=1")
    assert code == 0, out
    assert "0 warnings, 1 notice" in out
    code, _ = run("lint", SITE, "--priority", "41003=1", "--strict")
    assert code == 1


def test_lint_vendor_examples() -> None:
    code, out = run("lint", *VENDOR)
    assert code == 1
    assert "pools:\n  [0]-[0] " in out
    assert out.count("[unreachable-source]") == 3
    assert "[order-tie]" not in out  # identical pools: reported once, as unreachable
    assert "4 pools: 3 warnings, 3 notices" in out


def test_lint_single_clean_pool() -> None:
    code, out = run("lint", VENDOR[0])
    assert (code, out.strip()) == (0, "1 pool: 0 warnings, 0 notices")
