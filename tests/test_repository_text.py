"""The repository speaks of itself only: no tracked text file (code, tests, docs, scripts,
Markdown, toml, Makefile) mentions the work periods or numbered tickets it was built in, a
relative date, files beside the repository, or paths of one machine's file system.

Each rule is a regular expression, matched case-insensitively line by line; a failure names
every offending file:line and what matched. pytest's fixture scope `scope="session"` is API,
not a mention, and is allowed.
"""

import pathlib
import re
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# (pattern, what it stands for). The patterns are written so that this file's own text does
# not match them (e.g. `[k]`), and the sample lines below are assembled at run time.
RULES = [
    (r"\bsessions?\b", "a work period"),
    (r"\bissue #?[0-9]+", "a numbered ticket"),
    (r"\btoday\b", "a date relative to when it was written"),
    (r"\.\./shared", "a file beside the repository"),
    (r"/wor[k]/", "a machine path"),
    (r"/roo[t]/", "a machine path"),
    (r"/home/[a-z]", "a machine path"),
]
PATTERNS = [(re.compile(p, re.IGNORECASE), why) for p, why in RULES]
# pytest's API: a fixture's scope is spelled this way.
ALLOWED = re.compile(r"""scope\s*=\s*["']sessio[n]["']""")


def forbidden_in(line: str) -> list:
    """What `line` says that the rules forbid, as (matched text, what it stands for) pairs."""
    line = ALLOWED.sub("", line)
    return [(m.group(0), why) for pattern, why in PATTERNS for m in pattern.finditer(line)]


def text_of(path: pathlib.Path):
    """The file's text, or None for a binary file (a NUL byte, or not UTF-8)."""
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def tracked_files() -> list:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [name for name in out.decode("utf-8").split("\0") if name]


def test_the_matcher_flags_each_rule_and_spares_the_fixture_scope():
    # Assembled here, so that this file itself stays clean.
    ses, shared, work, root = "ses" + "sion", ".." + "/shared", "/wo" + "rk/", "/ro" + "ot/"
    flagged = [
        f"# as {ses} 3 measured",
        f"# {ses.upper()}S 4-5 agreed",
        "# see is" + "sue 7 for the figures",
        "# Is" + "sue #12: the padding",
        "# to" + "day the step is faster",
        f"python {shared}/bench/peer.py",
        f"TORCH_PY={work}tvenv/bin/python",
        f"cd {root}project",
        "/ho" + "me/alice/cnn_jax",
    ]
    for line in flagged:
        assert forbidden_in(line), line
    assert [text for text, _ in forbidden_in(f"{ses} and {shared}")] == [ses, shared]
    clean = [
        f'@pytest.fixture(scope="{ses}")',
        f"@pytest.fixture(scope='{ses}')",
        "# the issue is the padding, not the stride",
        "# sessionless; todays_pipeline; networking/ paths; shared/ folder; home/alice",
        "x = 2 ** 7  # issue-free",
    ]
    for line in clean:
        assert not forbidden_in(line), line
    # The fixture scope is spared only as the scope: the same word elsewhere on the line is not.
    assert forbidden_in(f'@pytest.fixture(scope="{ses}")  # once per {ses}')


@pytest.mark.skipif(
    shutil.which("git") is None or not (ROOT / ".git").exists(),
    reason="needs the git work tree to list the tracked files",
)
def test_no_tracked_text_file_mentions_sessions_tickets_or_outside_paths():
    found = []
    for name in tracked_files():
        path = ROOT / name
        if not path.is_file():  # deleted in the work tree, not yet in the index
            continue
        text = text_of(path)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            for matched, why in forbidden_in(line):
                found.append(f"{name}:{number}: {matched!r} ({why}): {line.strip()[:120]}")
    assert not found, f"{len(found)} line(s) speak of more than the repository:\n" + "\n".join(found)
