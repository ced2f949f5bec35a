"""GDO section 2 text rules: user->assistant pairs of one record, media tokens stripped, whitespace collapsed.

Every user->assistant turn pair becomes one single-turn candidate; <image>/<video>/<audio> tokens
are stripped from the user text and whitespace is collapsed; pairs with an empty question or answer
are dropped (counted); an assistant turn with no preceding user turn is ignored (counted); k counts
emitted pairs. These run once per message of a million-record pool, so the common case (plain string
content, no media token) takes the shortest path.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MEDIA_TOKEN_RE = re.compile(r"<(?:image|video|audio)>", re.IGNORECASE)
USER_ROLES = frozenset({"user", "human"})
ASSISTANT_ROLES = frozenset({"assistant", "gpt"})
SKIPPED_ROLES = frozenset({"system"})


class RecordError(ValueError):
    """One record is rejected: becomes a quarantine row."""

    def __init__(self, reason: str, field: str = "", detail: str = "") -> None:
        self.reason, self.field, self.detail = reason, field, detail
        super().__init__(f"{reason} [{field}] {detail}".strip())


def strip_media_tokens(text: str) -> str:
    """Remove <image>/<video>/<audio> placeholders (whitespace is NOT collapsed here)."""
    return MEDIA_TOKEN_RE.sub("", text) if "<" in text else text


def collapse_ws(text: str) -> str:
    return " ".join(text.split())


def source_group(source: str) -> str:
    """Text before "(" if present; else the first four "_"-separated parts; else the string."""
    if "(" in source:
        head = source.split("(", 1)[0].strip()
        if head:
            return head
    parts = source.split("_")
    if len(parts) > 4:
        return "_".join(parts[:4])
    return source


def content_text(content: Any, where: str) -> str:
    """Message content as text: a string, or the text parts of an OpenAI-style list (media parts dropped)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for i, part in enumerate(content):
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict):
                if isinstance(part.get("text"), str):
                    texts.append(part["text"])
            else:
                raise RecordError("wrong_schema", f"{where}[{i}]", f"content part of type {type(part).__name__}")
        return "\n".join(texts)
    raise RecordError("wrong_schema", where, f"content of type {type(content).__name__}")


@dataclass
class Pair:
    turn: int
    question: str
    question_raw: str
    answer: str


@dataclass
class PairStats:
    empty_pairs: int = 0
    orphan_assistant_turns: int = 0
    skipped_system_turns: int = 0

    def add(self, other: "PairStats") -> None:
        self.empty_pairs += other.empty_pairs
        self.orphan_assistant_turns += other.orphan_assistant_turns
        self.skipped_system_turns += other.skipped_system_turns


def pair_tuples(messages: Any, stats: PairStats) -> list[tuple[str, str, str]]:
    """(question, question_raw, answer) of each kept pair, in order (turn k = position). Raises RecordError."""
    if not isinstance(messages, list):
        raise RecordError("missing_messages" if messages is None else "wrong_schema", "messages",
                          "" if messages is None else f"type {type(messages).__name__}")
    pairs: list[tuple[str, str, str]] = []
    pending: str | None = None
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise RecordError("wrong_schema", f"messages[{i}]", f"type {type(msg).__name__}")
        role = msg.get("role")
        if role is None:
            role = msg.get("from")
        if not isinstance(role, str):
            raise RecordError("wrong_schema", f"messages[{i}].role", "missing role/from")
        text = msg.get("content")
        if text is None:
            text = msg.get("value")
        if not isinstance(text, str):
            text = content_text(text, f"messages[{i}].content")
        role = role.lower()
        if role in USER_ROLES:
            pending = text
        elif role in ASSISTANT_ROLES:
            if pending is None:
                stats.orphan_assistant_turns += 1
                continue
            q_raw = strip_media_tokens(pending).strip()
            q, a = " ".join(q_raw.split()), " ".join(text.split())
            pending = None
            if not q or not a:
                stats.empty_pairs += 1
                continue
            pairs.append((q, q_raw, a))
        elif role in SKIPPED_ROLES:
            stats.skipped_system_turns += 1
        else:
            raise RecordError("wrong_schema", f"messages[{i}].role", f"unknown role {role!r}")
    return pairs


def extract_pairs(messages: Any, stats: PairStats | None = None) -> list[Pair]:
    """User->assistant pairs of one record (GDO section 2 rules). Raises RecordError on bad schema."""
    stats = stats if stats is not None else PairStats()
    return [Pair(k, q, q_raw, a) for k, (q, q_raw, a) in enumerate(pair_tuples(messages, stats))]
