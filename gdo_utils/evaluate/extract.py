"""Answer extraction: lmms-eval 0.5.0's extractors re-implemented with their quirks (`release`) and the kit's parser (`robust`).

Release behaviour (EVAL_TRAIN_FORMATS.md section 2.2, read from the vendored lmms-eval 0.5.0):
- the chat wrapper first keeps the text inside `<answer>...</answer>` or `\\boxed{...}` when present
  (`reasoning_answer`);
- MVBench (`mvbench_letter`): a reply matching `^[A-E]\\.\\s*.+$` gives that letter; otherwise the
  VQA punctuation clean-up (with its quirks: the "p + space" test runs on the original text, and
  the period regex is applied at most 32 times because `re.UNICODE` lands in `sub`'s count
  argument), strip quotes/brackets, lower-case, and the first standalone letter a-e (so the article
  "a" reads as option A); no letter leaves the cleaned text itself, which never equals a letter;
- VideoMME and LVBench (`first_upper_abcd`): drop "The best answer is" and similar phrases (two of
  the list's entries are glued together by a missing comma, so "The best option is" is not
  dropped), "" for > 10 words without A-D, else the first uppercase A-D anywhere ("Based on" -> B);
- MLVU (`mlvu_char`): the character before the first ")", else the whole stripped reply.

`robust_letter` is the kit's parser: bare letters in any common dress, "answer is X", the option's
text without its letter, up to ten options; two different letters, a refusal or nothing -> None.
"""
from __future__ import annotations

import re
import string

# ----------------------------------------------------------------------------- shared release steps
_ANSWER_TAG = re.compile(r"<answer>\s*(.*?)\s*</answer>", re.DOTALL)
_BOXED = re.compile(r"\\boxed\{\s*(.*?)\s*\}", re.DOTALL)


def reasoning_answer(reply: str) -> str:
    """The wrapper's `parse_reasoning_model_answer`: the <answer> or \\boxed{} content, else the reply."""
    m = _ANSWER_TAG.search(reply) or _BOXED.search(reply)
    return m.group(1) if m else reply


# ----------------------------------------------------------------------------- MVBench (mcq_acc)
_MV_OPTION = re.compile(r"^([A-E])\.\s*(.+)$", re.IGNORECASE)
_MV_PERIOD = re.compile(r"(?!<=\d)(\.)(?!\d)")
_MV_COMMA = re.compile(r"(\d)(\,)(\d)")
_MV_PUNCT = [";", r"/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!"]


def _mv_punctuation(text: str) -> str:
    out = text
    for p in _MV_PUNCT:
        if (p + " " in text or " " + p in text) or _MV_COMMA.search(text) is not None:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return _MV_PERIOD.sub("", out, count=int(re.UNICODE))  # the release passes re.UNICODE as `count`


def mvbench_letter(text: str) -> str:
    """lmms-eval 0.5.0 MVBench `process`: an upper-case letter, or the cleaned text when none is found."""
    m = _MV_OPTION.match(text.strip())
    if m:
        return m.group(1).upper()
    t = text.replace("\n", " ").replace("\t", " ").strip()
    t = _mv_punctuation(t)
    t = t.strip("'").strip('"').strip(")").strip("(").strip().lower()
    m = re.search(r"\b([A-E])\b", t, re.IGNORECASE)
    return m.group(1).upper() if m else t


# ----------------------------------------------------------------------------- VideoMME / LVBench
_PREFIXES = ["The best answer is", "The correct answer is", "The answer is", "The answer",
             "The best option is" "The correct option is", "Best answer:" "Best option:"]  # glued as in the release


def first_upper_abcd(text: str) -> str:
    """lmms-eval 0.5.0 `extract_characters_regex` of VideoMME and LVBench."""
    s = text.strip()
    for p in _PREFIXES:
        s = s.replace(p, "")
    if len(s.split()) > 10 and not re.search("[ABCD]", s):
        return ""
    m = re.search(r"[ABCD]", s)
    return m[0] if m else ""


# ----------------------------------------------------------------------------- MLVU
def mlvu_char(text: str) -> str:
    """lmms-eval 0.5.0 MLVU `extract_characters_regex`: the char before the first ')', else the stripped reply."""
    s = text.strip()
    if ")" in s:
        i = s.index(")")
        return s[i - 1:i]
    return s


# ----------------------------------------------------------------------------- robust
_REFUSAL = re.compile(r"\b(cannot|can't|can not|unable|not sure|don't know|do not know|no answer|none of)\b", re.I)
_PHRASE = re.compile(r"\b(?:answer|option|choice)\b\s*(?:is|:|would be|=)?\s*[\(\[]?([A-Za-z])(?![A-Za-z])", re.I)


def _norm(s: str) -> str:
    s = s.lower().strip()
    s = s.translate(str.maketrans({c: " " for c in string.punctuation}))
    return " ".join(s.split())


def _letter_tokens(text: str, letters: str) -> list[str]:
    """Letters named as options: "(B)", "B)", "B.", "B:", or a standalone capital (not the article "A word")."""
    found: list[str] = []
    for m in re.finditer(r"(?<![A-Za-z0-9])\(?([A-Za-z])(?:[\)\].:,]|(?![A-Za-z0-9]))", text):
        ch, tok = m.group(1), m.group(0)
        up = ch.upper()
        if up not in letters:
            continue
        dressed = tok.startswith("(") or tok[-1:] in ").]:"
        if ch.islower() and not dressed:
            continue  # "a", "b" as words
        if ch == "A" and not dressed and re.match(r"\s+(?!(?:or|and|nor)\b)[a-z]", text[m.end():]):
            continue  # the article: "A red circle"
        if ch == "I" and not dressed:
            continue
        found.append(up)
    return found


def robust_letter(reply: str, letters: str, option_texts: tuple[str, ...] | list[str] = ()) -> str | None:
    """The kit's parser: one option letter from a free-form reply, or None (unparseable or ambiguous)."""
    text = reasoning_answer(reply).strip()
    if not text:
        return None
    bare = re.fullmatch(r"[\(\[]?\s*([A-Za-z])\s*[\)\]]?[.:]?", text)
    if bare and bare.group(1).upper() in letters:
        return bare.group(1).upper()
    lead = re.match(r"[\(\[]?([A-Za-z])[\)\].:](?:\s|$)", text)
    if lead and lead.group(1).upper() in letters:
        return lead.group(1).upper()
    phrase = [m.group(1).upper() for m in _PHRASE.finditer(text) if m.group(1).upper() in letters
              and (m.group(1).isupper() or len(text) < 40)]
    if len(set(phrase)) == 1:
        return phrase[0]
    named = _letter_tokens(text, letters)
    if len(set(named)) == 1:
        return named[0]
    if len(set(named)) > 1:
        return None
    if _REFUSAL.search(text):
        return None
    reply_n = f" {_norm(text)} "
    hits = [i for i, o in enumerate(option_texts) if _norm(o) and f" {_norm(o)} " in reply_n]
    hits = [i for i in hits if not any(j != i and _norm(option_texts[i]) in _norm(option_texts[j]) for j in hits)]
    if len(hits) == 1:
        return letters[hits[0]]
    return None


def split_inline_options(question: str) -> tuple[str, list[str]]:
    """Split "stem\\n(A) x\\n(B) y" (or "A. x") into the stem and the option texts (LVBench, MLVU copies)."""
    stem: list[str] = []
    opts: list[str] = []
    for line in question.split("\n"):
        m = re.match(r"^\s*\(?([A-J])[\).]\s*(.*)$", line)
        if m and ord(m.group(1)) - ord("A") == len(opts):
            opts.append(m.group(2).strip())
        elif not opts:
            stem.append(line)
        else:
            opts[-1] = f"{opts[-1]} {line.strip()}".strip()
    return "\n".join(stem).strip(), opts
