"""serving.request_ids: uuid4-form ids, distinct, and a forked child's never repeat its
parent's."""

from __future__ import annotations

import os
import sys
import uuid

import pytest

from serving import request_ids
from serving.lists.service import ListCall, new_request_id


def test_ids_are_version_4_uuids_in_hex_and_distinct() -> None:
    ids = [request_ids.request_id() for _ in range(5 * request_ids.BLOCK + 7)]  # several draws
    assert len(set(ids)) == len(ids)
    for got in ids[:: request_ids.BLOCK // 4]:
        parsed = uuid.UUID(hex=got)
        assert got == parsed.hex and len(got) == 32
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_list_calls_take_a_given_id_or_draw_one() -> None:
    assert new_request_id("mine") == "mine"
    assert uuid.UUID(hex=new_request_id(None)).version == 4
    fields = ListCall.__dataclass_fields__["request_id"]
    assert fields.default_factory is request_ids.request_id


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="needs fork")
def test_a_forked_child_draws_its_own_ids() -> None:
    request_ids.request_id()  # the parent holds a block with unused ids in it
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, then out without pytest's teardown
        os.write(write, request_ids.request_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    parent = [request_ids.request_id() for _ in range(request_ids.BLOCK)]
    assert len(child) == 32 and child not in parent
