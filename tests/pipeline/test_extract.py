"""Extract: files, directories, gzip, arrays and stdin become a stream of (origin, bytes, size)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from loader.errors import SourceError
from loader.pipeline.extract import discover_inputs, read_records


def _records(path: Path, limit: int = 1 << 20) -> list[tuple[str, bytes, int]]:
    (source,) = discover_inputs([str(path)])
    return list(read_records(source, max_record_bytes=limit))


def test_ndjson_lines_with_bom_crlf_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "a.ndjson"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\r\n\r\n  \n{"b": 2}\n{"c": 3}')
    name = str(path.resolve())
    assert _records(path) == [
        (f"{name}:1", b'{"a": 1}', 8),
        (f"{name}:4", b'{"b": 2}', 8),
        (f"{name}:5", b'{"c": 3}', 8),
    ]


def test_gzip_is_detected_by_content_not_name(tmp_path: Path) -> None:
    path = tmp_path / "events.data"
    path.write_bytes(gzip.compress(b'{"a": 1}\n{"b": 2}\n'))
    assert [r[1] for r in _records(path)] == [b'{"a": 1}', b'{"b": 2}']


def test_json_array_elements_keep_their_exact_text(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_bytes(b'  [ {"a": "x,]\\"y"} ,\n  {"b": [1, 2]},"str", 5 ]  ')
    name = str(path.resolve())
    assert _records(path) == [
        (f"{name}:1[0]", b'{"a": "x,]\\"y"}', 15),
        (f"{name}:2[1]", b'{"b": [1, 2]}', 13),
        (f"{name}:2[2]", b'"str"', 5),
        (f"{name}:2[3]", b"5", 1),
    ]


def test_an_element_nested_past_the_scanner_recursion_limit_is_one_record(
    tmp_path: Path,
) -> None:
    # json's C scanner recurses per level; a hostile element must not stop the file.
    # a string holding brackets and an escaped backslash, then 5000 levels of arrays
    deep = rb'{"k": "a]}[\\", "v": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    path = tmp_path / "deep.json"
    path.write_bytes(b'[{"a": 1}, ' + deep + b', {"b": 2}]')
    assert [r[1] for r in _records(path)] == [b'{"a": 1}', deep, b'{"b": 2}']


def test_a_truncated_array_yields_what_was_read_and_one_marker(tmp_path: Path) -> None:
    path = tmp_path / "cut.json"
    path.write_bytes(b'[{"a": 1}, {"b": ')
    got = _records(path)
    assert got[0][1] == b'{"a": 1}'
    assert got[1][1].startswith(b"<malformed JSON array; the rest of the file was not read>")
    assert len(got) == 2


def test_an_oversized_line_is_cut_at_the_limit_and_measured(tmp_path: Path) -> None:
    path = tmp_path / "big.ndjson"
    path.write_bytes(b"x" * 5000 + b"\n" + b'{"ok": 1}\n')
    (big, ok) = _records(path, limit=100)
    assert big[1] == b"x" * 100 and big[2] == 5000
    assert ok[1:] == (b'{"ok": 1}', 9)


def test_directories_are_walked_in_order_naming_every_file_skipped(tmp_path: Path) -> None:
    event = b'{"event": "subscriber.applied_tag", "data": {}}\n'
    (tmp_path / "b.ndjson").write_text("{}\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.json.gz").write_bytes(gzip.compress(b"{}\n"))
    (tmp_path / ".hidden.json").write_text("{}\n")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD.json").write_text("{}\n")
    (tmp_path / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (tmp_path / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "two.json.txt").write_bytes(event * 500)  # Drip events under another name
    (tmp_path / "array.export").write_bytes(b"\xef\xbb\xbf [\n " + event.strip() + b"]")
    (tmp_path / "zipped.bak").write_bytes(gzip.compress(event))
    (tmp_path / "config.yaml.json5").write_text('{"name": "x"}\n')
    (tmp_path / "empty.log").write_bytes(b"")
    (tmp_path / "random.bin").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "huge.txt").write_text('{"event": "' + "x" * 70_000 + '"}\n')
    notes: list[str] = []
    root = tmp_path.resolve()
    names = [
        Path(s.name).relative_to(root).as_posix()
        for s in discover_inputs([str(tmp_path)], note=notes.append)
    ]
    assert names == ["array.export", "b.ndjson", "sub/a.json.gz", "two.json.txt", "zipped.bak"]
    loading = "its name does not end in .json, .ndjson, .jsonl or .gz, but it holds Drip events"
    not_json = "not JSON (Drip events are NDJSON or a JSON array)"
    assert notes == [
        f"Skipped {tmp_path}/.DS_Store: hidden",
        f"Skipped {tmp_path}/.git/: hidden",
        f"Skipped {tmp_path}/.hidden.json: hidden",
        f"Skipped {tmp_path}/Thumbs.db: not data (a file the OS keeps in folders)",
        f"Loading {tmp_path}/array.export: {loading}",
        f"Skipped {tmp_path}/config.yaml.json5: JSON, but its first record is not a Drip event "
        '(an object with an "event")',
        f"Skipped {tmp_path}/empty.log: empty",
        f"Skipped {tmp_path}/huge.txt: cannot tell: its first record is not complete in its "
        "first 64 KiB",
        f"Skipped {tmp_path}/notes.txt: {not_json}",
        f"Skipped {tmp_path}/random.bin: not text (Drip events are JSON)",
        f"Loading {tmp_path}/two.json.txt: {loading}",
        f"Loading {tmp_path}/zipped.bak: {loading}",
    ]


def test_missing_file_and_empty_directory_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"nope\.ndjson: no such file; check the path"):
        discover_inputs([str(tmp_path / "nope.ndjson")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError) as refused:
        discover_inputs([str(tmp_path / "empty")])
    assert str(refused.value) == (
        f"{tmp_path / 'empty'}: directory holds no Drip event files (.json, .ndjson, .jsonl, "
        ".gz, or a file whose first record is a Drip event)"
    )


def test_a_corrupt_gzip_stream_is_a_source_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.gz"
    path.write_bytes(
        gzip.compress(b'{"a": 1}\n' * 1000)[:-40] + b"garbage-garbage-garbage-garbage-garbage!"
    )
    with pytest.raises(SourceError, match="read failed"):
        _records(path)


def test_lines_after_a_leading_array_are_read_as_ndjson(tmp_path: Path) -> None:
    path = tmp_path / "mixed.ndjson"
    path.write_bytes(b'[{"a": 1}]  \n{"b": 2}\n\n{"c": 3}\n')
    name = str(path.resolve())
    assert _records(path) == [
        (f"{name}:1[0]", b'{"a": 1}', 8),
        (f"{name}:2", b'{"b": 2}', 8),
        (f"{name}:4", b'{"c": 3}', 8),
    ]
