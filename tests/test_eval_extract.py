"""Answer extraction: the kit's robust parser and the re-implemented lmms-eval 0.5.0 extractors (hand-written cases)."""
from __future__ import annotations

import pytest

from gdo_utils.evaluate.extract import (first_upper_abcd, mlvu_char, mvbench_letter, reasoning_answer, robust_letter,
                                        split_inline_options)

DIRS = ("up", "down", "left", "right")  # A B C D

ROBUST_CASES = [
    ("B", "ABCD", DIRS, "B"),
    ("(B)", "ABCD", DIRS, "B"),
    ("B.", "ABCD", DIRS, "B"),
    ("b)", "ABCD", DIRS, "B"),
    ("c", "ABCD", DIRS, "C"),
    ("[A]", "ABCD", DIRS, "A"),
    ("(A) up", "ABCD", DIRS, "A"),
    ("B: down", "ABCD", DIRS, "B"),
    ("The answer is B", "ABCD", DIRS, "B"),
    ("Answer: B. red", "ABCD", DIRS, "B"),
    ("Option (C)", "ABCD", DIRS, "C"),
    ("The correct option is D, because it moves right", "ABCD", DIRS, "D"),
    ("right", "ABCD", DIRS, "D"),                       # the option's text without its letter
    ("It moves left.", "ABCD", DIRS, "C"),
    ("A red circle moves left", "ABCD", DIRS, "C"),     # "A" is the article, "left" the option
    ("A or C", "ABCD", DIRS, None),                     # two letters named
    ("Both B and D are possible", "ABCD", DIRS, None),
    ("left or right", "ABCD", DIRS, None),              # two option texts
    ("I cannot tell from the video.", "ABCD", DIRS, None),  # a refusal
    ("", "ABCD", DIRS, None),
    ("   ", "ABCD", DIRS, None),
    ("G", "ABCD", DIRS, None),                          # not an option letter
    ("<answer>C</answer>", "ABCD", DIRS, "C"),
    ("\\boxed{D}", "ABCD", DIRS, "D"),
    ("F", "ABCDEF", ("1", "2", "3", "4", "5", "6"), "F"),  # MLVU: six options
    ("E) five", "ABCDEF", ("1", "2", "3", "4", "five", "6"), "E"),
    ("the answer is e", "ABCDE", ("a", "b", "c", "d", "e"), "E"),
    ("blue", "ABCD", ("red", "dark blue", "blue", "green"), "C"),  # "blue" only: not "dark blue"
    ("dark blue", "ABCD", ("red", "dark blue", "blue", "green"), "B"),  # the longer text wins over its part
]


@pytest.mark.parametrize("reply,letters,options,expected", ROBUST_CASES)
def test_robust_parser(reply, letters, options, expected):
    assert robust_letter(reply, letters, options) == expected


MVBENCH_CASES = [
    ("B. red", "B"),          # the ^[A-E]\.\s*.+$ rule
    ("(B) red", "B"),         # brackets removed, then the first standalone letter
    ("a cat", "A"),           # quirk: the article reads as option A
    ("I think it is C", "C"),
    ("d.", "D"),              # "d." does not match the option rule (nothing after the period); period stripped
    ("E. something", "E"),
    ("Because", "because"),   # no letter: the cleaned text is returned (never equals a letter)
    ("", ""),
]


@pytest.mark.parametrize("reply,expected", MVBENCH_CASES)
def test_release_mvbench(reply, expected):
    assert mvbench_letter(reply) == expected


VIDEOMME_CASES = [
    ("Based on the video, the answer is C", "B"),  # quirk: first uppercase A-D anywhere
    ("The best answer is C.", "C"),
    ("Best answer: C", "B"),                      # quirk: "Best answer:" is glued to "Best option:" in the release list
    ("the video shows a red circle moving to the left across a black background", ""),  # > 10 words, no A-D
    ("a", ""),                                    # lower case never matches
    ("(A)", "A"),
    ("D", "D"),
]


@pytest.mark.parametrize("reply,expected", VIDEOMME_CASES)
def test_release_videomme_lvbench(reply, expected):
    assert first_upper_abcd(reply) == expected


MLVU_CASES = [("(B) red", "B"), ("B. red", "B. red"), ("B", "B"), (" E) five", "E"), (")", "")]


@pytest.mark.parametrize("reply,expected", MLVU_CASES)
def test_release_mlvu(reply, expected):
    assert mlvu_char(reply) == expected


def test_reasoning_answer_and_inline_options():
    assert reasoning_answer("think... <answer> B </answer>") == "B"
    assert reasoning_answer("plain") == "plain"
    stem, opts = split_inline_options("What colour?\n(A) red\n(B) blue\n(C) green\n(D) white")
    assert stem == "What colour?" and opts == ["red", "blue", "green", "white"]


def test_case_table_is_large_enough():
    assert len(ROBUST_CASES) + len(MVBENCH_CASES) + len(VIDEOMME_CASES) + len(MLVU_CASES) >= 30
