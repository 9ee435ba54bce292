"""The shared change stamp: one value seen by every process that maps the file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from recsys.stamp import ChangeStamp


def test_every_mapping_of_the_file_sees_the_last_value_set(tmp_path: Path) -> None:
    one, two = ChangeStamp(tmp_path / "s"), ChangeStamp(tmp_path / "s")
    assert one.read() == two.read() == 0  # created as eight zero bytes
    one.set(41)
    assert two.read() == 41
    script = "import sys; from recsys.stamp import ChangeStamp; ChangeStamp(sys.argv[1]).set(-7)"
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "s")], check=True,
                   cwd=Path.cwd())  # fmt: skip
    assert one.read() == two.read() == -7
    three = ChangeStamp(tmp_path / "s")  # opening an existing stamp keeps its value
    assert three.read() == -7
    for stamp in (one, two, three):
        stamp.close()
    assert one.read() is None


def test_a_stamp_that_cannot_be_created_reads_none(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    stamp = ChangeStamp(blocked / "s")
    assert stamp.read() is None
    stamp.set(3)  # nothing to set: no error either
    assert stamp.read() is None
