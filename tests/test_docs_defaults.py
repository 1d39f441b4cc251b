"""The defaults the docs name are the code's: read from the code (weights/panel.txt, the default single model,
DEFAULT_SCAN_DETECTOR, the verdict band, the CLI's option defaults), so this keeps working when they change."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer

from ddtool.cli import app

REPO = Path(__file__).resolve().parents[1]
# Docs that state today's defaults (docs/benchmark.md and docs/train.md are dated logs: they say what was).
DOCS = [REPO / "README.md", REPO / "examples" / "README.md"] + [
    REPO / "docs" / f"{name}.md" for name in ("scan", "verify", "weights", "media", "explain", "architecture")
]
DEFAULT_WORDS = re.compile(r"scan's default|by default|default single model|shipped default|default panel|default detector|"
                           r"default face detector|\(default\)|the default model")
# A clause about the past or another command's default is no claim about today's scan.
NOT_TODAY = re.compile(r"earlier|until|\bwas\b|former|before|\bstill\b|extract|--default|no longer|\bnot\b")


def _scan_command():
    return typer.main.get_command(app).commands["scan"]


def _clauses_with_a_default(text: str):
    """Each sentence, table cell or list item that names a default."""
    for clause in re.split(r"(?<=[.!?])\s+|\n\s*\n|\||\n- |;", text):
        if DEFAULT_WORDS.search(clause) and not NOT_TODAY.search(clause):
            yield " ".join(clause.split())


def _defaults():
    from ddtool.media.faces import DEFAULT_SCAN_DETECTOR
    from ddtool.weights import default_weights, panel_names

    single = default_weights()
    return {"panel": panel_names(), "single": single.stem if single else None, "detector": DEFAULT_SCAN_DETECTOR}


def stale_names(text: str) -> list[str]:
    """Weights or face detectors named as today's default that are not the code's defaults (with their clause)."""
    from ddtool.media.faces import DETECTORS

    defaults = _defaults()
    weights = {p.stem for p in (REPO / "weights").glob("*.json")}
    allowed_weights = set(defaults["panel"]) | {defaults["single"]}
    wrong = []
    for clause in _clauses_with_a_default(text):
        named = set(re.findall(r"`([\w-]+)`", clause))
        named |= {n.lower() for n in re.findall(r"(\w[\w-]*) by default", clause)}
        wrong += [f"{n} in: {clause[:160]}" for n in sorted((named & weights) - allowed_weights)]
        wrong += [f"{n} in: {clause[:160]}" for n in sorted((named & set(DETECTORS)) - {defaults["detector"]})]
    return wrong


def test_docs_name_only_todays_default_weights_and_face_detector():
    wrong = [f"{doc.relative_to(REPO)}: {w}" for doc in DOCS for w in stale_names(doc.read_text(encoding="utf-8"))]
    assert not wrong, "\n".join(wrong)


def test_the_check_finds_the_stale_sentences_of_the_issue():
    """Sentences like docs/scan.md l. 11 and docs/weights.md l. 46 before issue 22 fail the check above
    (with names that are not today's defaults, whatever those are)."""
    defaults = _defaults()
    detector = "hog" if defaults["detector"] != "hog" else "centerface"
    weights = sorted({p.stem for p in (REPO / "weights").glob("*.json")} - set(defaults["panel"]) - {defaults["single"], "panel_measured"})[0]
    found = stale_names(f"detect (dlib {detector.upper()} by default; `--detector blazeface` is faster) and track faces.")
    assert [w.split(" in:")[0] for w in found] == [detector]
    assert [w.split(" in:")[0] for w in stale_names(f"| `{weights}` (scan's default) | LDFnet | 975,949 |")] == [weights]


def test_scan_doc_states_the_code_s_face_detector_and_band():
    from ddtool.scan.calibration import BAND, VIDEO_BAND

    text = (REPO / "docs" / "scan.md").read_text(encoding="utf-8")
    (detector,) = re.findall(r"detect faces \((\w+) by default", text)
    assert detector == _defaults()["detector"]
    high, low = map(float, re.search(r"`fake` when the panel score is at least ([\d.]+), `real` when it is\s+below ([\d.]+)", text).groups())
    assert (low, high) == pytest.approx(BAND, abs=0.005)
    high, low = map(float, re.search(r"For a video: `fake` when the\s+video's panel score is at least ([\d.]+), `real` when it is below ([\d.]+)", text).groups())
    assert (low, high) == pytest.approx(VIDEO_BAND, abs=0.005)
    assert "weights/panel.txt" in text and "docs/benchmark.md" in text


def test_scan_doc_option_table_matches_the_cli_defaults():
    """Every literal default in docs/scan.md's option table (a number, a word, on/off, none) is the CLI's."""
    params = {opt: p for p in _scan_command().params for opt in getattr(p, "opts", [])}
    text = (REPO / "docs" / "scan.md").read_text(encoding="utf-8")
    checked = 0
    for option, documented in re.findall(r"^\| `(--[\w-]+)[^`]*` \| ([^|]*) \|", text, flags=re.MULTILINE):
        param = params.get(option)
        documented = documented.strip()
        if param is None or not re.fullmatch(r"[\w.]+", documented):
            continue  # described in words ("the panel", "from the card"): nothing literal to compare
        default = getattr(param.default, "value", param.default)
        words = {"none": None, "off": False, "on": True}
        if isinstance(default, bool):  # a --x/--no-x switch may be documented by the name of its default side
            words.update({opt.lstrip("-"): True for opt in param.opts} | {opt.lstrip("-"): False for opt in param.secondary_opts})
        expected = words.get(documented, documented)
        assert (default if expected in (None, True, False) else str(default)) == expected, f"{option}: docs say {documented}, code {default}"
        checked += 1
    assert checked >= 8  # frames, detector, all-faces, threshold, aggregate, device, batch, out, resume, json, ...
