"""Everyday spoken questions with short checkable answers, and the checker ``is_correct``.

Written for this project (issue 13): the kind of thing a person asks a voice assistant out loud,
each answerable in a word or a number. ``accept`` lists every answer string that counts; the
checker normalises case, punctuation and number words ("twenty-four" == "24"), then looks for an
accepted answer as whole words anywhere in the reply.

Known limit of a "contains" check: a reply that hedges over several options ("six or eight")
counts if one of them is right. Replies are at most three sentences (the engine's sentence
budget), which keeps this rare; the bench prints every reply so it can be read.
"""

from __future__ import annotations

import re

# (category, question, accepted answers)
_RAW = [
    # counts
    ("count", "How many legs does a spider have?", ["8"]),
    ("count", "How many legs does a dog have?", ["4"]),
    ("count", "How many days are there in a week?", ["7"]),
    ("count", "How many months are in a year?", ["12"]),
    ("count", "How many hours are there in one day?", ["24"]),
    ("count", "How many sides does a triangle have?", ["3"]),
    ("count", "How many sides does a hexagon have?", ["6"]),
    ("count", "How many wheels does a bicycle have?", ["2"]),
    ("count", "How many fingers are on one hand, counting the thumb?", ["5"]),
    ("count", "How many continents are there?", ["7"]),
    ("count", "How many legs does a chicken have?", ["2"]),
    ("count", "How many planets are in our solar system?", ["8"]),
    # sums
    ("sum", "What is two plus three?", ["5"]),
    ("sum", "What is seven plus five?", ["12"]),
    ("sum", "What is ten minus four?", ["6"]),
    ("sum", "What is three times four?", ["12"]),
    ("sum", "What is nine plus six?", ["15"]),
    ("sum", "What is twenty divided by four?", ["5"]),
    ("sum", "What is fifteen minus eight?", ["7"]),
    ("sum", "What is double eight?", ["16"]),
    ("sum", "What is half of ten?", ["5"]),
    ("sum", "What is one hundred plus one?", ["101"]),
    # colours
    ("colour", "What colour is the sky on a clear sunny day?", ["blue"]),
    ("colour", "What colour is fresh grass?", ["green"]),
    ("colour", "What colour is a ripe banana?", ["yellow"]),
    ("colour", "What colour is fresh snow?", ["white"]),
    ("colour", "What colour do you get when you mix blue and yellow paint?", ["green"]),
    ("colour", "What colour do you get when you mix red and white paint?", ["pink"]),
    ("colour", "What colour is coal?", ["black"]),
    ("colour", "What colour is a ripe strawberry?", ["red"]),
    # capitals
    ("capital", "What is the capital of France?", ["paris"]),
    ("capital", "What is the capital of Japan?", ["tokyo"]),
    ("capital", "What is the capital of Italy?", ["rome"]),
    ("capital", "What is the capital of Germany?", ["berlin"]),
    ("capital", "What is the capital of Spain?", ["madrid"]),
    ("capital", "What is the capital city of the United Kingdom?", ["london"]),
    ("capital", "What is the capital of Egypt?", ["cairo"]),
    ("capital", "What is the capital of Canada?", ["ottawa"]),
    ("capital", "What is the capital of Australia?", ["canberra"]),
    ("capital", "What is the capital of Russia?", ["moscow"]),
    # opposites
    ("opposite", "What is the opposite of hot?", ["cold"]),
    ("opposite", "What is the opposite of up?", ["down"]),
    ("opposite", "What is the opposite of big?", ["small", "little", "tiny"]),
    ("opposite", "What is the opposite of day?", ["night"]),
    ("opposite", "What is the opposite of fast?", ["slow"]),
    ("opposite", "What is the opposite of happy?", ["sad", "unhappy"]),
    ("opposite", "What is the opposite of left?", ["right"]),
    ("opposite", "What is the opposite of wet?", ["dry"]),
    # days and months
    ("calendar", "What day comes after Monday?", ["tuesday"]),
    ("calendar", "What day comes before Friday?", ["thursday"]),
    ("calendar", "Which month comes after March?", ["april"]),
    ("calendar", "What is the first month of the year?", ["january"]),
    ("calendar", "What is the last month of the year?", ["december"]),
    ("calendar", "Which month comes right before June?", ["may"]),
    ("calendar", "What day comes after Saturday?", ["sunday"]),
    # animals
    ("animal", "Which farm animal says moo?", ["cow", "cows"]),
    ("animal", "What do you call a baby dog?", ["puppy", "pup"]),
    ("animal", "What do you call a baby cat?", ["kitten", "kitty"]),
    ("animal", "What do bees make?", ["honey"]),
    ("animal", "What is the fastest land animal?", ["cheetah", "cheetahs"]),
    ("animal", "Which animal has a long trunk?", ["elephant", "elephants"]),
    ("animal", "Which animal barks?", ["dog", "dogs"]),
    # units
    ("unit", "How many centimetres are in a metre?", ["100"]),
    ("unit", "How many grams are in a kilogram?", ["1000"]),
    ("unit", "How many minutes are in an hour?", ["60"]),
    ("unit", "How many seconds are in a minute?", ["60"]),
    ("unit", "At how many degrees Celsius does water freeze?", ["0"]),
    ("unit", "At how many degrees Celsius does water boil?", ["100"]),
    ("unit", "How many inches are in a foot?", ["12"]),
    # general
    ("general", "Which planet do we live on?", ["earth"]),
    ("general", "What do you call frozen water?", ["ice"]),
    ("general", "Which is the largest planet in our solar system?", ["jupiter"]),
    ("general", "Which gas do people need to breathe in to live?", ["oxygen"]),
    ("general", "Which is the biggest ocean on Earth?", ["pacific"]),
    ("general", "What language do people speak in Brazil?", ["portuguese"]),
]

QUESTIONS: list[dict] = [
    {"id": f"q{i:02d}", "category": category, "question": question, "accept": accept}
    for i, (category, question, accept) in enumerate(_RAW, 1)
]

# A fixed, category-balanced subset for --quick runs.
QUICK_IDS = ["q01", "q05", "q13", "q16", "q23", "q27", "q31", "q38", "q41", "q46", "q49", "q54",
             "q56", "q59", "q63", "q67", "q70", "q75"]

_UNITS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen".split())}
_TENS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if w != "_"}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}


def _numbers_to_digits(words: list[str]) -> list[str]:
    """Replace runs of number words with digits: "one hundred and one" -> "101"."""
    out: list[str] = []
    i = 0
    while i < len(words):
        if words[i] not in _UNITS and words[i] not in _TENS:
            out.append(words[i])
            i += 1
            continue
        total = current = 0
        j = i
        while j < len(words):
            w = words[j]
            if w in _UNITS:
                current += _UNITS[w]
            elif w in _TENS:
                current += _TENS[w]
            elif w in _SCALES and j > i:
                if _SCALES[w] == 100:
                    current *= 100
                else:
                    total += current * _SCALES[w]
                    current = 0
            elif w == "and" and j + 1 < len(words) and (words[j + 1] in _UNITS or words[j + 1] in _TENS) and j > i \
                    and words[j - 1] in _SCALES:
                pass
            else:
                break
            j += 1
        out.append(str(total + current))
        i = j
    return out


def normalise(text: str) -> list[str]:
    """Lower-case words with number words as digits and "1,000" as "1000"."""
    text = text.lower().replace("colour", "color")
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # 1,000 -> 1000
    text = re.sub(r"(?<=\d)\.0+\b", "", text)  # 5.0 -> 5
    text = text.replace("-", " ")
    text = re.sub(r"\ba (hundred|thousand|million)\b", r"one \1", text)  # "a hundred" -> 100
    words = re.findall(r"[a-z]+|\d+(?:\.\d+)?", text)
    return _numbers_to_digits(words)


def is_correct(reply: str, accept: list[str]) -> bool:
    """True if any accepted answer occurs in ``reply`` as whole (normalised) words."""
    words = normalise(reply)
    padded = " " + " ".join(words) + " "
    return any(" " + " ".join(normalise(answer)) + " " in padded for answer in accept)
