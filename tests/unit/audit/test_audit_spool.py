"""The spool: durable JSON-lines segments, read back in write order, deleted only on request."""

from __future__ import annotations

from pathlib import Path

from audit.trail.samples import sample_record
from audit.trail.spool import Spool


def test_records_read_back_in_the_order_they_were_written(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.open()
    written = [sample_record(i) for i in range(10)]
    spool.append(written[:4])
    spool.append(written[4:])
    (segment,) = spool.segments()
    assert list(spool.read(segment).records) == written
    assert spool.count == 10


def test_sealing_starts_a_new_segment_and_segments_sort_oldest_first(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.open()
    spool.append([sample_record(0)])
    spool.seal()
    spool.append([sample_record(1)])
    first, second = spool.segments()
    assert first.name < second.name
    assert spool.read(first).records[0].message_id == "msg-00000000"
    assert spool.read(second).records[0].message_id == "msg-00000001"


def test_a_segment_rolls_over_past_its_size_limit(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=1)
    spool.open()
    for i in range(3):
        spool.append([sample_record(i)])
    assert len(spool.segments()) == 3
    assert [spool.read(p).records[0].message_id for p in spool.segments()] == [f"msg-{i:08d}" for i in range(3)]


def test_a_reopened_spool_counts_what_was_left_and_continues_after_it(tmp_path: Path) -> None:
    first = Spool(tmp_path)
    first.open()
    first.append([sample_record(i) for i in range(3)])
    again = Spool(tmp_path)
    again.open()
    assert again.count == 3
    again.append([sample_record(3)])
    assert len(again.segments()) == 2


def test_deleting_a_segment_removes_its_records_from_the_count(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.open()
    spool.append([sample_record(i) for i in range(3)])
    segment = spool.read(spool.segments()[0])
    spool.delete(segment)
    assert spool.segments() == []
    assert spool.count == 0


def test_a_torn_last_line_is_skipped_and_a_corrupt_line_is_kept_aside(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.open()
    spool.append([sample_record(0)])
    path = spool.segments()[0]
    with path.open("ab") as f:
        f.write(b'{"garbage": true}\n')
        f.write(sample_record(1).to_json() + b"\n")
        f.write(b'{"record_id": "torn')
    segment = spool.read(path)
    assert [r.message_id for r in segment.records] == ["msg-00000000", "msg-00000001"]
    assert path.with_suffix(".corrupt").read_bytes() == b'{"garbage": true}\n'


def test_a_spool_whose_directory_is_a_file_is_not_writable(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    assert not Spool(blocker / "spool").writable()
    assert Spool(tmp_path / "fine").writable()
