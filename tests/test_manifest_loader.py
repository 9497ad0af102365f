"""Loading restoro.yaml: YAML 1.2 scalars, positions, duplicate keys, digest, file errors."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

import pytest

from restoro.errors import ManifestError
from restoro.manifest.diagnostics import SourceMap
from restoro.manifest.loader import load_manifest, parse_yaml

if TYPE_CHECKING:
    from pathlib import Path

BASE = """\
restoro: 1
project: demo
sources:
  e01:
    path: media/e01.vob
    timecode: "01:00:00;00"
pipelines:
  film:
    - {stage: ingest, mode: ivtc}
    - {stage: upscale, model: lanczos, scale: 2}
titles:
  ep1:
    source: e01
    pipeline: film
deliverables:
  master: {kind: prores, raster: 1920x1080}
"""


def _yaml(text: str) -> object:
    data, diags = parse_yaml(textwrap.dedent(text), SourceMap("t.yaml", text))
    assert diags == []
    return data


def _write(tmp_path: Path, text: str, name: str = "restoro.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_yaml_12_scalars_timecodes_stay_strings() -> None:
    data = _yaml("""
        a: 10:00:00:00
        b: 01:00:00;00
        c: 1:30
        d: 01:00:00.00
        e: 190:20:30
    """)
    assert data == {
        "a": "10:00:00:00",
        "b": "01:00:00;00",
        "c": "1:30",
        "d": "01:00:00.00",
        "e": "190:20:30",
    }


def test_yaml_12_scalars_only_true_false_are_bools() -> None:
    data = _yaml("""
        words: [yes, no, on, off, y, n, Yes, NO]
        bools: [true, false, True, FALSE]
        nulls: [null, ~, Null, ]
        empty:
    """)
    assert data == {
        "words": ["yes", "no", "on", "off", "y", "n", "Yes", "NO"],
        "bools": [True, False, True, False],
        "nulls": [None, None, None],
        "empty": None,
    }


def test_yaml_12_scalars_numbers() -> None:
    data = _yaml("""
        ints: [0, 12, -3, +4, 010, 0o17, 0x1F, 1_000]
        floats: [1.5, -0.25, 1e3, .5, 2., .inf, -.inf]
        text: [2e, 422hq, 24000/1001, 16M, 0b101, 2001-12-14, "12"]
    """)
    assert isinstance(data, dict)
    assert data["ints"] == [0, 12, -3, 4, 10, 15, 31, "1_000"]
    assert data["floats"] == [1.5, -0.25, 1000.0, 0.5, 2.0, float("inf"), float("-inf")]
    assert data["text"] == ["2e", "422hq", "24000/1001", "16M", "0b101", "2001-12-14", "12"]


def test_yaml_anchors_still_work_but_merge_keys_are_plain_keys() -> None:
    data = _yaml("""
        a: &x {k: 1}
        b: *x
        c: {<<: 1}
    """)
    assert data == {"a": {"k": 1}, "b": {"k": 1}, "c": {"<<": 1}}


def test_positions_of_keys_and_values_are_recorded(tmp_path: Path) -> None:
    loaded = load_manifest(_write(tmp_path, BASE))
    assert loaded.locate(("titles", "ep1", "source")) == (13, 13)
    assert loaded.smap.locate_key(("titles", "ep1", "source")) == (13, 5)
    assert loaded.locate(("pipelines", "film", 1, "scale")) == (10, 47)
    # Absent nodes resolve to their nearest ancestor.
    assert loaded.locate(("titles", "ep1", "overrides", 3)) == (13, 5)
    assert loaded.root == tmp_path.resolve()
    assert loaded.text == BASE
    assert loaded.manifest.titles["ep1"].source == "e01"


def test_duplicate_keys_are_errors_at_the_second_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, BASE.replace("  ep1:\n", "  ep1:\n    pipeline: film\n"))
    with pytest.raises(ManifestError) as info:
        load_manifest(tmp_path.joinpath("restoro.yaml").relative_to(tmp_path))
    assert info.value.render() == textwrap.dedent("""\
        restoro.yaml:15:5: error[E202]: duplicate key 'pipeline' (first defined on line 13)
          15 |     pipeline: film
             |     ^
          hint: remove one of the two; YAML keeps only one of them""")


def test_digest_ignores_comments_order_and_whitespace(tmp_path: Path) -> None:
    a = load_manifest(_write(tmp_path, BASE, "a.yaml")).digest
    reordered = textwrap.dedent("""\
        # a comment
        project: demo     # trailing comment
        restoro: 1

        deliverables:
          master:
            raster: 1920x1080
            kind: prores
        titles: {ep1: {pipeline: film, source: e01}}
        pipelines:
          film:
            - stage: ingest
              mode: ivtc
            - {scale: 2, model: lanczos, stage: upscale}
        sources:
          e01: {timecode: "01:00:00;00", path: "media/e01.vob"}
    """)
    b = load_manifest(_write(tmp_path, reordered, "b.yaml")).digest
    assert a == b
    assert a.startswith("xxh128:") and len(a) == len("xxh128:") + 32
    # Writing a default explicitly does not change the meaning, so not the digest either.
    explicit = load_manifest(_write(tmp_path, BASE + "output: out\n", "c.yaml")).digest
    assert explicit == a
    edited = load_manifest(_write(tmp_path, BASE.replace("scale: 2", "scale: 3"), "d.yaml"))
    assert edited.digest != a


def test_missing_file_is_one_diagnostic_at_1_1(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as info:
        load_manifest(tmp_path / "nope.yaml")
    (diag,) = info.value.diagnostics
    assert (diag.line, diag.col, diag.code) == (1, 1, "E200")
    assert "no manifest at" in diag.message
    assert info.value.exit_code == 2


def test_non_utf8_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "restoro.yaml"
    path.write_bytes(b"restoro: 1\nproject: \xff\xfe\n")
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    assert info.value.diagnostics[0].message.startswith("cannot read the manifest")


@pytest.mark.parametrize(
    ("text", "code", "message"),
    [
        ("", "E210", "the manifest is empty"),
        ("- a\n- b\n", "E210", "the manifest must be a mapping, got a list"),
        ("restoro: 1\nproject: x\nsources: !!binary aGVsbG8=\n", "E201", "unsupported YAML tag"),
        ("restoro: 1\nproject: x\n? [a, b]\n: 1\n", "E201", "mapping keys must be plain names"),
    ],
)
def test_documents_that_are_not_manifests(
    tmp_path: Path, text: str, code: str, message: str
) -> None:
    with pytest.raises(ManifestError) as info:
        load_manifest(_write(tmp_path, text))
    (diag,) = info.value.diagnostics
    assert diag.code == code
    assert diag.message.startswith(message)


def test_strict_types_no_yaml_11_surprises(tmp_path: Path) -> None:
    text = BASE.replace("{stage: ingest, mode: ivtc}", "{stage: ingest, mode: ivtc, cache: yes}")
    with pytest.raises(ManifestError) as info:
        load_manifest(_write(tmp_path, text))
    (diag,) = info.value.diagnostics
    assert diag.message == "cache: expected true or false, got the string 'yes'"


def _tree(node: object) -> list[tuple[object, ...]]:
    import yaml

    out: list[tuple[object, ...]] = []
    stack = [node]
    while stack:
        n = stack.pop()
        assert isinstance(n, yaml.Node)
        scalar = n.value if isinstance(n, yaml.ScalarNode) else None
        out.append((type(n).__name__, n.tag, n.start_mark.line, n.start_mark.column, scalar))
        if isinstance(n, yaml.CollectionNode):
            for item in reversed(n.value):
                stack.extend(reversed(item) if isinstance(item, tuple) else (item,))
    return out


def test_libyaml_composer_gives_the_pure_python_tree_and_positions() -> None:
    """The fast path (libyaml's composer) must give the same nodes, tags (YAML 1.2 scalars)
    and positions as ``ManifestLoader``; the limits are checked on its tree too."""
    import yaml

    from restoro.manifest import loader as L

    if L._CParser is None:
        pytest.skip("PyYAML without libyaml")
    text = BASE + textwrap.dedent(
        """\
        variants:
          a: &v
            note: "x"
            n: 0x1f
            f: 1.5e3
            yes_: no
            on: ~
            tc: 01:00:00:00
          b: *v
          c:
            - [*v, *v, 'quoted: yes', 12]
            - >-
              folded
              text
        """
    )
    fast, slow = yaml.compose(text, Loader=L.CManifestLoader), L._compose(text)
    assert _tree(fast) == _tree(yaml.compose(text, Loader=L.ManifestLoader)) == _tree(slow)
    assert L._within_limits(fast)
    # Planted: more aliases than allowed, and a small bomb, both refused on the fast tree.
    many = "a: &a 1\nb: [" + ", ".join(["*a"] * (L.MAX_ALIASES + 1)) + "]\n"
    assert not L._within_limits(yaml.compose(many, Loader=L.CManifestLoader))
    ok = "a: &a 1\nb: [" + ", ".join(["*a"] * L.MAX_ALIASES) + "]\n"
    assert L._within_limits(yaml.compose(ok, Loader=L.CManifestLoader))
    bomb = "l0: &l0 [" + ", ".join(["x"] * 9) + "]\n"
    for i in range(1, 7):
        bomb += f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]\n"
    assert not L._within_limits(yaml.compose(bomb, Loader=L.CManifestLoader))
