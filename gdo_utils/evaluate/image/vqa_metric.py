"""VQA answer normalisation and soft accuracy, with the official tables of the VQA evaluation script.

Tables (contractions, number words, articles, punctuation, the period and comma patterns) are those
of the official VQA evaluation (GT-Vision-Lab/VQA `vqaEval.py`), which lmms-eval carries as
`EvalAIAnswerProcessor`. Soft accuracy: for each of the n human answers, leave it out and score
min(#remaining humans that gave the reply / 3, 1); average over the n leave-one-out subsets (the
10-choose-9 subsets for VQAv2 / TextVQA).

Two normalisations, as lmms-eval 0.5.0 applies them (the release):
- `vqav2`: punctuation, then digits/articles/contractions, on the reply and on every human answer;
- `textvqa`: the EvalAI processor's full call (lower case, drop ',' '?', split "'s", then the same
  two steps), on the reply and on every human answer.
"""
from __future__ import annotations

import re
from typing import Iterable, Literal

CONTRACTIONS = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
    "couldn'tve": "couldn't've", "couldnt've": "couldn't've", "didnt": "didn't", "doesnt": "doesn't",
    "dont": "don't", "hadnt": "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't",
    "havent": "haven't", "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's",
    "howd": "how'd", "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm",
    "Ive": "I've", "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've", "itll": "it'll",
    "let's": "let's", "maam": "ma'am", "mightnt": "mightn't", "mightnt've": "mightn't've",
    "mightn'tve": "mightn't've", "mightve": "might've", "mustnt": "mustn't", "mustve": "must've",
    "neednt": "needn't", "notve": "not've", "oclock": "o'clock", "oughtnt": "oughtn't",
    "ow's'at": "'ow's'at", "'ows'at": "'ow's'at", "'ow'sat": "'ow's'at", "shant": "shan't",
    "shed've": "she'd've", "she'dve": "she'd've", "she's": "she's", "shouldve": "should've",
    "shouldnt": "shouldn't", "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've",
    "somebody'd": "somebodyd", "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've",
    "somebodyll": "somebody'll", "somebodys": "somebody's", "someoned": "someone'd",
    "someoned've": "someone'd've", "someone'dve": "someone'd've", "someonell": "someone'll",
    "someones": "someone's", "somethingd": "something'd", "somethingd've": "something'd've",
    "something'dve": "something'd've", "somethingll": "something'll", "thats": "that's",
    "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've", "therere": "there're",
    "theres": "there's", "theyd": "they'd", "theyd've": "they'd've", "they'dve": "they'd've",
    "theyll": "they'll", "theyre": "they're", "theyve": "they've", "twas": "'twas", "wasnt": "wasn't",
    "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've", "werent": "weren't", "whatll": "what'll",
    "whatre": "what're", "whats": "what's", "whatve": "what've", "whens": "when's", "whered": "where'd",
    "wheres": "where's", "whereve": "where've", "whod": "who'd", "whod've": "who'd've", "who'dve": "who'd've",
    "wholl": "who'll", "whos": "who's", "whove": "who've", "whyll": "why'll", "whyre": "why're",
    "whys": "why's", "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't",
    "wouldnt've": "wouldn't've", "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll",
    "y'allll": "y'all'll", "yall'd've": "y'all'd've", "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've",
    "youd": "you'd", "youd've": "you'd've", "you'dve": "you'd've", "youll": "you'll", "youre": "you're",
    "youve": "you've",
}
NUMBER_MAP = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
              "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
ARTICLES = ("a", "an", "the")
PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")  # verbatim, lookbehind typo included: any '.' not before a digit
COMMA_STRIP = re.compile(r"(\d)(,)(\d)")
PUNCTUATIONS = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`",
                ",", "?", "!")
Normalisation = Literal["vqav2", "textvqa"]


def process_punctuation(text: str) -> str:
    """Drop a punctuation mark next to a space (or anywhere when digits hold a comma), else make it a space."""
    out = text
    comma_in_number = COMMA_STRIP.search(text) is not None
    for p in PUNCTUATIONS:
        if (p + " " in text or " " + p in text) or comma_in_number:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return PERIOD_STRIP.sub("", out)


def process_digit_article(text: str) -> str:
    """Lower case, number words to digits, articles dropped, contractions restored."""
    words = [NUMBER_MAP.get(w, w) for w in text.lower().split()]
    words = [w for w in words if w not in ARTICLES]
    return " ".join(CONTRACTIONS.get(w, w) for w in words)


def normalize_answer(text: str, how: Normalisation = "vqav2") -> str:
    """One answer (reply or human) as the VQA evaluation compares it."""
    t = text
    if how == "textvqa":
        t = t.lower().replace(",", "").replace("?", "").replace("'s", " 's").strip()
    t = t.replace("\n", " ").replace("\t", " ").strip()
    return process_digit_article(process_punctuation(t))


def soft_accuracy(reply: str, answers: Iterable[str], how: Normalisation = "vqav2") -> float:
    """Mean over leave-one-out subsets of min(#humans in the subset who gave the reply / 3, 1), in [0, 1]."""
    gts = [normalize_answer(a, how) for a in answers]
    if not gts:
        raise ValueError("soft_accuracy needs at least one human answer")
    res = normalize_answer(reply, how)
    total = 0.0
    for i in range(len(gts)):
        matches = sum(1 for j, g in enumerate(gts) if j != i and g == res)
        total += min(1.0, matches / 3.0)
    return total / len(gts)
