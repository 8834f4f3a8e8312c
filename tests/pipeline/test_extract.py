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


def test_directories_are_walked_in_order_skipping_hidden_and_other_files(tmp_path: Path) -> None:
    (tmp_path / "b.ndjson").write_text("{}\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.json.gz").write_bytes(gzip.compress(b"{}\n"))
    (tmp_path / ".hidden.json").write_text("{}\n")
    (tmp_path / "notes.txt").write_text("hello")
    names = [
        Path(s.name).relative_to(tmp_path.resolve()).as_posix()
        for s in discover_inputs([str(tmp_path)])
    ]
    assert names == ["b.ndjson", "sub/a.json.gz"]


def test_missing_file_and_empty_directory_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"nope\.ndjson: no such file; check the path"):
        discover_inputs([str(tmp_path / "nope.ndjson")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="directory holds no .json, .ndjson, .jsonl or .gz files"):
        discover_inputs([str(tmp_path / "empty")])


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
