"""The event-stream parser, case by case of the WHATWG spec ("Interpreting an event stream")."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmctl.client import sse
from vmctl.client.sse import Message, Parser

# The daemon's shape: ids, types, JSON data, a keep-alive comment between messages.
DAEMON_STREAM = (
    b'id: 1\nevent: console\ndata: {"seq":1,"text":"a\xe2\x80\xa8b \xc3\xa9"}\n\n'
    b": keep-alive\n\n"
    b'id: 2\r\nevent: value\r\ndata: {"seq":2}\r\n\r\n'
    b'event: end\rdata: {"status":"ok"}\r\r'
)
DAEMON_MESSAGES = [
    Message("console", '{"seq":1,"text":"a\u2028b é"}', "1"),
    Message("value", '{"seq":2}', "2"),
    Message("end", '{"status":"ok"}', "2"),
]


def parse(*chunks: bytes) -> list[Message]:
    parser = Parser()
    return [message for chunk in chunks for message in parser.feed(chunk)]


def test_data_lines_are_joined_with_newlines() -> None:
    # The spec's stock-ticker example.
    assert parse(b"data: YHOO\ndata: +2\ndata: 10\n\n") == [Message("message", "YHOO\n+2\n10", "")]


def test_the_daemons_stream_in_one_chunk() -> None:
    assert parse(DAEMON_STREAM) == DAEMON_MESSAGES


@given(st.lists(st.integers(0, len(DAEMON_STREAM)), max_size=8))
def test_the_same_messages_however_the_bytes_are_split(cuts: list[int]) -> None:
    # Chunks may end anywhere: inside a line, between CR and LF, inside a UTF-8 character.
    bounds = [0, *sorted(cuts), len(DAEMON_STREAM)]
    chunks = [DAEMON_STREAM[a:b] for a, b in itertools.pairwise(bounds)]
    assert parse(*chunks) == DAEMON_MESSAGES


def test_a_comment_after_an_id_dispatches_nothing() -> None:
    # httpx-sse's issue #35: the sticky last id must not make a blank line a message.
    assert parse(b"id: 7\ndata: x\n\n: ping\n\n: ping\n\n") == [Message("message", "x", "7")]


def test_a_message_without_data_is_not_dispatched_but_its_id_is_kept() -> None:
    parser = Parser()
    assert parser.feed(b"event: end\nid: 3\n\n") == []
    assert parser.last_event_id == "3"
    assert parser.feed(b"data\n\n") == [Message("message", "", "3")]


def test_field_syntax() -> None:
    stream = (
        b"data:no space\n"  # the space after the colon is optional...
        b"data:  two spaces\n"  # ...and only one is removed
        b"data\n"  # a field name alone is the field with an empty value
        b"Data: wrong case\n"  # names are case-sensitive: ignored
        b"unknown: ignored\n"
        b"data: a: colon\n"
        b"\n"
    )
    assert parse(stream) == [Message("message", "no space\n two spaces\n\na: colon", "")]


def test_ids_with_nul_and_bad_retries_are_ignored() -> None:
    parser = Parser()
    parser.feed(b"id: 1\nretry: 1500\n\nid: 2\x003\nretry: 10ms\ndata: x\n\n")
    assert (parser.last_event_id, parser.retry_ms) == ("1", 1500)


def test_an_empty_id_resets_the_last_id() -> None:
    assert parse(b"id: 4\ndata: a\n\nid\ndata: b\n\n")[-1] == Message("message", "b", "")


def test_a_leading_byte_order_mark_is_skipped_once() -> None:
    assert parse(b"\xef\xbb\xbfdata: a\n\n") == [Message("message", "a", "")]
    assert parse(b"data: a\n\n\xef\xbb\xbfdata: b\n\n") == [Message("message", "a", "")]


def test_a_message_cut_off_by_the_end_of_the_stream_is_not_dispatched() -> None:
    assert parse(b"id: 1\ndata: whole\n\nid: 2\ndata: cut") == [Message("message", "whole", "1")]
    assert parse(b"id: 1\ndata: whole\n\nid: 2\ndata: cut\n") == [Message("message", "whole", "1")]


def test_invalid_utf8_is_replaced() -> None:
    assert parse(b"data: \xff\n\n") == [Message("message", "\ufffd", "")]


def test_an_endless_line_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sse, "MAX_MESSAGE_CHARS", 10)
    parser = Parser()
    with pytest.raises(sse.SSEError):
        parser.feed(b"data: " + b"x" * 20)
    with pytest.raises(sse.SSEError):
        Parser().feed(b"data: 123456\ndata: 123456\n")
