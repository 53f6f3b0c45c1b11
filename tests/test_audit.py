"""``dni-engine audit``: every number on real page files, which pools swap it, which none does.

The command runs as a user runs it (a child process, ``python -m dni_engine.cli``)
on files written to temporary folders; a few tests drive :class:`Auditor` directly.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dni_engine.audit import Auditor
from dni_engine.cli import MAX_INPUT_BYTES, cli
from dni_engine.schema import load_pools
from tests.conftest import EXAMPLES, ROOT

SITE = str(EXAMPLES / "site" / "pools.json")
CONTACT = str(EXAMPLES / "pages" / "contact.html")
USAGE, FAILURE = 2, 1

# The example site: six GB pools that all swap 0117 496 0000.
SITE_POOLS = json.loads(Path(SITE).read_text())
GOOGLE_ADS = SITE_POOLS[0]


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: bytes
    stderr: bytes


def dni(*args: str, stdin: bytes | None = None) -> Run:
    """Run ``dni-engine ARGS`` through the console script's group, in this process."""
    result = CliRunner().invoke(cli, list(args), input=stdin if stdin is not None else b"")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Run(result.exit_code, result.stdout_bytes, result.stderr_bytes)


def dni_process(*args: str, stdin: bytes = b"", cwd: Path = ROOT) -> Run:
    """Run ``dni-engine ARGS`` as a user does: a child process."""
    result = subprocess.run(
        [sys.executable, "-m", "dni_engine.cli", *args],
        input=stdin,
        capture_output=True,
        cwd=cwd,
        timeout=120,
        check=False,
    )
    return Run(result.returncode, result.stdout, result.stderr)


def out(result: Run) -> str:
    assert b"Traceback" not in result.stdout + result.stderr, result.stderr.decode()
    return result.stdout.decode("utf-8", "surrogateescape")


def errors(result: Run) -> list[str]:
    """The stderr lines of ``result`` that are errors, after checking every one is one."""
    assert b"Traceback" not in result.stdout + result.stderr, result.stderr.decode()
    lines = [line for line in result.stderr.decode().splitlines() if not line.startswith("warning")]
    assert all(line.startswith("error: ") for line in lines), lines
    return lines


def audit_json(*args: str, stdin: bytes | None = None) -> dict[str, Any]:
    result = dni("audit", *args, "--json", stdin=stdin)
    assert result.returncode == 0, result.stderr.decode()
    data: dict[str, Any] = json.loads(result.stdout.decode("utf-8"))  # valid UTF-8 always
    return data


def pool(**changes: Any) -> dict[str, Any]:
    """The example site's first pool (Google Ads, 0117 496 0000), with ``changes``."""
    doc: dict[str, Any] = copy.deepcopy(GOOGLE_ADS)
    config = doc["replacement_configuration"]
    for key in ("numbers_to_replace", "replace_all_numbers"):
        if key in changes:
            config[key] = changes.pop(key)
    if config.get("replace_all_numbers"):
        config.pop("numbers_to_replace", None)
    doc.update(changes)
    return doc


def write_pools(folder: Path, *pools: dict[str, Any], name: str = "pools.json") -> str:
    path = folder / name
    path.write_text(json.dumps(list(pools)))
    return str(path)


def numbers_of(data: dict[str, Any], page: int = 0) -> list[dict[str, Any]]:
    numbers: list[dict[str, Any]] = data["pages"][page]["numbers"]
    return numbers


# ---- the example page -----------------------------------------------------------------


def test_the_example_page_is_reported_per_number_and_pool() -> None:
    # The README's example, as a user runs it.
    result = dni_process("audit", "examples/pages", "--pools", "examples/site/pools.json")
    assert result.returncode == 0, result.stderr.decode()
    assert result.stderr == b""
    lines = out(result).splitlines()
    assert lines[0] == "examples/pages/contact.html: 4 numbers, 3 swapped, 1 untracked"
    assert lines[1] == "  10:46     +441174960000  (+441174960000, link)"
    assert lines[2] == "            Google Ads (41001)                    -> +441174960101"
    assert "  10:61     0117 496 0000  (+441174960000, national)" in lines
    assert "            Google Ads (41001)                    -> 0117 496 0101" in lines
    assert "            Social referrals (41005)              -> 0117 496 0501" in lines
    assert "  11:19     +44 117 496 0000  (+441174960000, international)" in lines
    assert "            Website (all other visitors) (41006)  -> +44 117 496 0601" in lines
    untracked = lines.index("  12:22     (0117) 496 0999  (+441174960999, national)")
    assert lines[untracked + 1] == "            UNTRACKED: no pool swaps it"
    assert lines[-2] == "6 pools (6 active), countries searched: GB"
    assert lines[-1] == "1 page read: 4 numbers found, 3 swapped, 1 untracked"


def test_numbers_the_rewriter_never_touches_are_not_listed() -> None:
    # The example page also has 0117 496 0000 in a <script> and in a data-dni-noswap
    # paragraph, and a company number: none of them is a number on the page.
    data = audit_json(CONTACT, "--pools", SITE)
    assert [(n["line"], n["text"]) for n in numbers_of(data)] == [
        (10, "+441174960000"),
        (10, "0117 496 0000"),
        (11, "+44 117 496 0000"),
        (12, "(0117) 496 0999"),
    ]


# ---- the JSON shape -------------------------------------------------------------------


def test_the_json_shape_is_stable() -> None:
    data = audit_json(CONTACT, "--pools", SITE)
    assert set(data) == {"version", "pools", "countries", "pages", "summary"}
    assert data["version"] == 1
    assert data["countries"] == ["GB"]
    assert data["pools"][0] == {
        "index": 0,
        "key": "41001",
        "name": "Google Ads",
        "country": "GB",
        "active": True,
        "replace_all": False,
        "numbers_to_replace": ["+441174960000"],
        "ignored": [],
        "sample": "+441174960101",
    }
    assert [p["index"] for p in data["pools"]] == list(range(6))
    (page,) = data["pages"]
    assert set(page) == {"page", "error", "numbers"}
    assert page["page"] == CONTACT
    assert page["error"] is None
    link, text, international, untracked = page["numbers"]
    assert text == {
        "line": 10,
        "column": 61,
        "start": text["start"],
        "end": text["start"] + 13,
        "text": "0117 496 0000",
        "number": "+441174960000",
        "link": False,
        "form": "national",
        "status": "swapped",
        "swapped_by": [{"pool": i, "written_as": f"0117 496 0{i + 1}01"} for i in range(6)],
        "tracking_number_of": [],
    }
    source = Path(CONTACT).read_text()
    assert source[text["start"] : text["end"]] == "0117 496 0000"
    assert link["link"] is True
    assert link["form"] == "link"
    assert link["swapped_by"][0] == {"pool": 0, "written_as": "+441174960101"}
    assert international["form"] == "international"
    assert untracked["status"] == "untracked"
    assert untracked["swapped_by"] == []
    assert data["summary"] == {"pages": 1, "numbers": 4, "swapped": 3, "untracked": 1, "failed": 0}


# ---- what is read: files, folders, standard input ---------------------------------------


def test_folders_are_searched_recursively_for_html_files(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "b" / "deeper").mkdir(parents=True)
    (site / "index.html").write_text("<p>0117 496 0000</p>")
    (site / "b" / "about.HTM").write_text("<p>0117 496 0001</p>")
    (site / "b" / "deeper" / "x.html").write_text("")
    (site / "notes.txt").write_text("0117 496 0002")  # not a page
    (site / "app.js").write_text('"0117 496 0003"')
    data = audit_json(str(site), "--pools", SITE)
    pages = [p["page"] for p in data["pages"]]
    # Files of a folder first, then its subfolders, each in name order.
    assert pages == [f"{site}/index.html", f"{site}/b/about.HTM", f"{site}/b/deeper/x.html"]
    assert data["summary"]["numbers"] == 2


def test_links_to_files_are_read_links_to_folders_not_followed(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "a.html").write_text("0117 496 0000")
    (tmp_path / "elsewhere.html").write_text("0117 496 0999")
    (site / "b.html").symlink_to(tmp_path / "elsewhere.html")
    (site / "loop").symlink_to(site, target_is_directory=True)
    data = audit_json(str(site), "--pools", SITE)
    assert [p["page"] for p in data["pages"]] == [f"{site}/a.html", f"{site}/b.html"]


def test_a_page_too_large_to_read_is_a_usage_error(tmp_path: Path) -> None:
    huge = tmp_path / "huge.html"
    with huge.open("wb") as handle:
        handle.truncate(MAX_INPUT_BYTES + 1)  # sparse: nothing is written
    result = dni("audit", str(huge), "--pools", SITE)
    assert result.returncode == USAGE
    (line,) = errors(result)
    assert f"huge.html: larger than {MAX_INPUT_BYTES:,} bytes; not read" in line


def test_a_file_named_is_read_as_html_whatever_its_name(tmp_path: Path) -> None:
    page = tmp_path / "contact.php"
    page.write_text("<?php echo $x ?><p>Call 0117&nbsp;496 0000</p>")
    data = audit_json(str(page), "--pools", SITE)
    (number,) = numbers_of(data)
    assert number["text"] == "0117&nbsp;496 0000"
    assert number["swapped_by"][0]["written_as"] == "0117&nbsp;496 0101"


def test_standard_input_is_a_page(tmp_path: Path) -> None:
    result = dni_process("audit", "-", "--pools", SITE, stdin=b"<p>Call 0117 496 0000</p>")
    assert result.returncode == 0
    assert out(result).startswith("- (standard input): 1 number, 1 swapped, 0 untracked\n")
    data = audit_json("-", "--pools", SITE, stdin=b"0117 496 0999")
    assert data["pages"][0]["page"] == "-"
    assert numbers_of(data)[0]["status"] == "untracked"


def test_a_page_given_twice_is_read_once(tmp_path: Path) -> None:
    page = tmp_path / "a.html"
    page.write_text("0117 496 0000")
    data = audit_json(str(page), str(tmp_path), str(page), "--pools", SITE)
    assert [p["page"] for p in data["pages"]] == [str(page)]


def test_an_empty_page_has_no_numbers(tmp_path: Path) -> None:
    page = tmp_path / "empty.html"
    page.write_bytes(b"")
    result = dni("audit", str(page), "--pools", SITE)
    assert result.returncode == 0
    assert out(result).splitlines()[0] == f"{page}: 0 numbers"
    assert numbers_of(audit_json(str(page), "--pools", SITE)) == []
    assert audit_json("-", "--pools", SITE, stdin=b"")["summary"]["numbers"] == 0


def test_bytes_that_are_not_utf8_are_kept(tmp_path: Path) -> None:
    page = tmp_path / "latin1.html"
    # Latin-1: "Café" is one byte per letter; columns count each such byte once.
    page.write_bytes("<p>Café: 0117 496 0000</p>\n<p>Bar \xe9 0117 496 0999</p>".encode("latin-1"))
    data = audit_json(str(page), "--pools", SITE)
    first, second = numbers_of(data)
    assert (first["line"], first["column"], first["status"]) == (1, 10, "swapped")
    assert (second["line"], second["column"], second["status"]) == (2, 10, "untracked")
    result = dni("audit", str(page), "--pools", SITE)
    assert result.returncode == 0
    assert "  1:10      0117 496 0000  (+441174960000, national)\n" in out(result)


def test_a_file_name_that_is_not_utf8_is_reported(tmp_path: Path) -> None:
    name = os.fsencode(tmp_path) + b"/caf\xe9.html"
    try:
        Path(os.fsdecode(name)).write_text("0117 496 0000")
    except (OSError, UnicodeError):
        pytest.skip("the file system does not take a name that is not UTF-8")
    result = dni("audit", str(tmp_path), "--pools", SITE)
    assert result.returncode == 0
    assert result.stdout.startswith(name + b": 1 number")  # the name's bytes, as on disk
    data = audit_json(str(tmp_path), "--pools", SITE)
    assert data["pages"][0]["page"].endswith("caf\ufffd.html")


def test_positions_count_lines_and_characters(tmp_path: Path) -> None:
    page = tmp_path / "lines.html"
    page.write_bytes("<p>\r\n  ½ 0117 496 0000\r\n</p><p>x</p> 0117\n496 0001".encode())
    data = audit_json(str(page), "--pools", SITE)
    first, second = numbers_of(data)
    assert (first["line"], first["column"]) == (2, 5)
    assert (second["line"], second["column"], second["text"]) == (3, 14, "0117\n496 0001")
    result = dni("audit", str(page), "--pools", SITE)
    assert "0117\\n496 0001" in out(result)  # the line break inside it is shown escaped


# ---- which pools swap a number, and how ----------------------------------------------------


def test_listed_numbers_in_every_written_form(tmp_path: Path) -> None:
    page = tmp_path / "forms.html"
    forms = [
        "0117 496 0000",
        "01174960000",
        "0117-496-0000",
        "(0117) 496 0000",
        "+44 (0)117 496 0000",
        "0044 117 496 0000",
        "+441174960000",
    ]
    page.write_text("".join(f"<p>{form}</p>\n" for form in forms))
    data = audit_json(str(page), "--pools", SITE)
    numbers = numbers_of(data)
    assert [n["text"] for n in numbers] == forms
    assert {n["number"] for n in numbers} == {"+441174960000"}
    assert [n["form"] for n in numbers] == ["national"] * 4 + ["international"] * 2 + ["e164"]
    assert [n["swapped_by"][0]["written_as"] for n in numbers] == [
        "0117 496 0101",
        "01174960101",
        "0117-496-0101",
        "(0117) 496 0101",
        "+44 (0)117 496 0101",
        "0044 117 496 0101",
        "+441174960101",
    ]
    assert all(len(n["swapped_by"]) == 6 for n in numbers)


def test_links_are_numbers_and_keep_their_scheme(tmp_path: Path) -> None:
    page = tmp_path / "links.html"
    page.write_text(
        '<a href="tel:01174960000">Call</a> <a href="CALLTO:+441174960000">Skype</a> '
        '<a href="tel:+441174960999">0117 496 0999</a> <a href="/contact?0117 496 0000">x</a>'
    )
    data = audit_json(str(page), "--pools", SITE)
    numbers = numbers_of(data)
    assert [(n["text"], n["link"], n["status"]) for n in numbers] == [
        ("01174960000", True, "swapped"),
        ("+441174960000", True, "swapped"),
        ("+441174960999", True, "untracked"),
        ("0117 496 0999", False, "untracked"),
    ]
    assert numbers[0]["swapped_by"][0]["written_as"] == "+441174960101"
    assert numbers[1]["swapped_by"][1]["written_as"] == "+441174960201"


def test_a_replace_all_pool_swaps_every_number_of_its_country(tmp_path: Path) -> None:
    pools = write_pools(
        tmp_path, pool(numbers_to_replace=[], replace_all_numbers=True, name="All numbers")
    )
    page = tmp_path / "p.html"
    page.write_text("<p>0117 496 0999, 020 7946 0123, +353 1 234 5678</p>")
    data = audit_json(str(page), "--pools", pools)
    assert data["pools"][0]["replace_all"] is True
    assert data["pools"][0]["numbers_to_replace"] == []
    numbers = numbers_of(data)
    assert [(n["text"], n["status"]) for n in numbers] == [
        ("0117 496 0999", "swapped"),
        ("020 7946 0123", "swapped"),
    ]  # the Irish number is no GB pool's to swap, nor searched for: IE is no pool's country
    assert numbers[0]["swapped_by"] == [{"pool": 0, "written_as": "0117 496 0101"}]
    assert numbers[1]["swapped_by"][0]["written_as"] is not None


def test_every_pool_that_swaps_a_number_is_listed_in_pool_order(tmp_path: Path) -> None:
    listed = pool(name="Listed", numbers_to_replace=["0117 496 0000"])
    everything = pool(
        id=41002,
        name="Everything",
        numbers=[{"id": 9571090, "phone_number": "+441174960801"}],
        replace_all_numbers=True,
    )
    pools = write_pools(tmp_path, everything, listed)
    data = audit_json("-", "--pools", pools, stdin=b"0117 496 0000 or 0117 496 0999")
    first, second = numbers_of(data)
    assert first["swapped_by"] == [
        {"pool": 0, "written_as": "0117 496 0801"},
        {"pool": 1, "written_as": "0117 496 0101"},
    ]
    assert second["swapped_by"] == [{"pool": 0, "written_as": "0117 496 0801"}]


def test_untracked_numbers_and_fail_on_untracked(tmp_path: Path) -> None:
    page = tmp_path / "p.html"
    page.write_text("Sales 0117 496 0000, support 0117 496 0999, fax 0117 496 0998")
    result = dni("audit", str(page), "--pools", SITE)
    assert result.returncode == 0
    assert result.stderr == b""
    assert out(result).splitlines()[-1] == "1 page read: 3 numbers found, 1 swapped, 2 untracked"
    result = dni_process("audit", str(page), "--pools", SITE, "--fail-on-untracked")
    assert result.returncode == FAILURE
    assert errors(result) == ["error: 2 untracked numbers on 1 page: calls to them are not tracked"]
    assert "UNTRACKED: no pool swaps it" in out(result)  # the report is printed all the same
    clean = tmp_path / "clean.html"
    clean.write_text("Sales 0117 496 0000")
    assert dni("audit", str(clean), "--pools", SITE, "--fail-on-untracked").returncode == 0


def test_country_adds_numbers_to_search_for(tmp_path: Path) -> None:
    page = tmp_path / "p.html"
    page.write_text("Bristol 0117 496 0000, Dublin +353 1 234 5678")
    data = audit_json(str(page), "--pools", SITE, "--country", "ie")
    assert data["countries"] == ["GB", "IE"]
    assert [(n["number"], n["status"]) for n in numbers_of(data)] == [
        ("+441174960000", "swapped"),
        ("+35312345678", "untracked"),
    ]


def test_an_inactive_pool_swaps_nothing(tmp_path: Path) -> None:
    pools = write_pools(tmp_path, pool(status="deleted"))
    result = dni("audit", "-", "--pools", pools, stdin=b"0117 496 0000")
    assert result.returncode == 0
    assert result.stderr.decode() == (
        "warning: pool 'Google Ads': status 'deleted' is not 'active': the pool leases no "
        "numbers; it swaps nothing\n"
    )
    assert "UNTRACKED" in out(result)
    assert "1 pool (0 active)" in out(result)


def test_a_pool_request_swaps_but_has_no_sample(tmp_path: Path) -> None:
    request = json.loads((EXAMPLES / "pools" / "geographic-city.request.json").read_text())
    pools = write_pools(tmp_path, request)
    result = dni("audit", "-", "--pools", pools, stdin=b"Call 020 7839 5555")
    assert result.returncode == 0
    assert "            ABC Company 123  -> (no tracking number yet)" in out(result)
    data = audit_json("-", "--pools", pools, stdin=b"Call 020 7839 5555")
    assert data["pools"][0]["sample"] is None
    assert data["pools"][0]["key"] == "ABC Company 123"
    assert numbers_of(data)[0]["swapped_by"] == [{"pool": 0, "written_as": None}]


def test_a_tracking_number_written_on_a_page_is_pointed_out(tmp_path: Path) -> None:
    data = audit_json("-", "--pools", SITE, stdin=b"Call 0117 496 0201")
    (number,) = numbers_of(data)
    assert number["tracking_number_of"] == [1]
    assert number["status"] == "untracked"
    result = dni("audit", "-", "--pools", SITE, stdin=b"Call 0117 496 0201")
    assert "            a tracking number of Microsoft Ads (41002)" in out(result)


def test_pools_of_several_files_are_one_site(tmp_path: Path) -> None:
    a = write_pools(tmp_path, pool(), name="a.json")
    b = write_pools(
        tmp_path,
        pool(
            id=50001,
            name="Other",
            numbers=[{"id": 1, "phone_number": "+441174960901"}],
            numbers_to_replace=["0117 496 0999"],
        ),
        name="b.json",
    )
    data = audit_json("-", "--pools", a, "--pools", b, stdin=b"0117 496 0000, 0117 496 0999")
    assert [n["swapped_by"] for n in numbers_of(data)] == [
        [{"pool": 0, "written_as": "0117 496 0101"}],
        [{"pool": 1, "written_as": "0117 496 0901"}],
    ]
    result = dni("audit", "-", "--pools", a, "--pools", a)  # the same pool twice: a clash
    assert result.returncode == FAILURE
    (line,) = errors(result)
    assert "a.json" in line
    assert "41001" in line


# ---- usage errors and failures -----------------------------------------------------------


def test_every_bad_input_is_listed_before_any_work(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "style.css").write_text("")
    result = dni_process(
        "audit",
        str(tmp_path / "missing.html"),
        str(empty),
        CONTACT,
        "--pools",
        str(tmp_path / "missing.json"),
        "--country",
        "XX",
    )
    assert result.returncode == USAGE
    assert result.stdout == b""
    lines = errors(result)
    assert len(lines) == 4, lines
    assert lines[0].startswith("error: Invalid value for '--country': 'XX' is not a country")
    assert lines[1].startswith("error: Invalid value for '--pools': ")
    assert "missing.json: no such file" in lines[1]
    assert "missing.html: no such file" in lines[2]
    assert f"{empty}: the folder holds no .html or .htm file" in lines[3]
    assert all(line.endswith("(see 'dni-engine audit --help')") for line in lines)


def test_a_folder_is_no_pool_file() -> None:
    result = dni("audit", CONTACT, "--pools", str(EXAMPLES))
    assert result.returncode == USAGE
    (line,) = errors(result)
    assert "is a folder, not a file" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_an_unreadable_page_in_a_folder_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "ok.html").write_text("0117 496 0000")
    secret = tmp_path / "secret.html"
    secret.write_text("0117 496 0000")
    secret.chmod(0)
    try:
        result = dni("audit", str(tmp_path), "--pools", SITE)
    finally:
        secret.chmod(0o600)
    assert result.returncode == USAGE
    (line,) = errors(result)
    assert "secret.html cannot be read" in line


def test_missing_arguments_are_usage_errors() -> None:
    (line,) = errors(result := dni("audit", CONTACT))
    assert result.returncode == USAGE
    assert "--pools" in line
    (line,) = errors(result := dni("audit", "--pools", SITE))
    assert result.returncode == USAGE
    assert "PAGE" in line


def test_invalid_pool_files_fail_with_every_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "", "match_period": 0}')
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    result = dni("audit", CONTACT, "--pools", str(bad), "--pools", str(broken))
    assert result.returncode == FAILURE
    assert result.stdout == b""
    lines = errors(result)
    assert len(lines) == 2
    assert "bad.json" in lines[0]
    assert "problems found" in lines[0]
    assert "match_period" in lines[0]
    assert "broken.json" in lines[1]


def test_the_help_documents_the_exit_statuses() -> None:
    result = dni("audit", "--help")
    assert result.returncode == 0
    text = out(result)
    assert "--fail-on-untracked" in text
    assert "Exit status" in text


# ---- the library ---------------------------------------------------------------------------


def test_a_page_whose_finder_fails_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    auditor = Auditor(load_pools(Path(SITE).read_bytes()))

    def broken(self: object, html: str) -> list[object]:
        raise RuntimeError("boom")

    monkeypatch.setattr("dni_engine.rewrite.Rewriter.find_html", broken)
    audit = auditor.audit("p.html", "0117 496 0000")
    assert audit.numbers == ()
    assert audit.error == "finding numbers failed: RuntimeError: boom"


def test_pools_of_one_configuration_share_a_finder() -> None:
    auditor = Auditor(load_pools(Path(SITE).read_bytes()))
    assert len(auditor._rewriters) == 2  # the six pools' listed numbers, GB's any number
    audit = auditor.audit("p", "0117 496 0000")
    assert [s.written_as for s in audit.numbers[0].swaps] == [
        f"0117 496 0{i}01" for i in range(1, 7)
    ]
