"""A seeded, labelled demo task set, and `solve`: the truth recovered from a prompt's text.

The simulated server sees only the prompt, never a task id, so every prompt
written here carries everything needed to answer it: `solve` parses the
arithmetic, looks the word up in the fixed vocabulary, or finds the question
in the fact table. The same pair also grades real models in the demo.

Answers are normalised (see `normalise_answer`), so a grader compares strings:

    label   lower-case label             "animal"
    number  integer in decimal            "-7"
    text    lower-case phrase, no final . "william shakespeare"
    json    compact JSON, sorted keys     '{"age":34,"city":"lyon","name":"maria"}'
"""

import random
import re
from dataclasses import dataclass
from typing import Literal

import orjson

AnswerType = Literal["label", "number", "text", "json"]
ANSWER_TYPES: tuple[AnswerType, ...] = ("label", "number", "text", "json")


@dataclass(frozen=True, slots=True)
class LabelledTask:
    task_id: str
    prompt: str
    answer_type: AnswerType
    labels: tuple[str, ...]  # the allowed labels of a label task, else ()
    answer: str  # normalised correct answer
    category: str


@dataclass(frozen=True, slots=True)
class Truth:
    answer: str  # normalised correct answer
    wrong: tuple[str, ...]  # plausible wrong answers, normalised, never equal to `answer`
    answer_type: AnswerType

    @property
    def category(self) -> str:
        """The task category `demo_tasks` records for a prompt of this kind (the simulated
        fleet's per-category accuracy keys on it)."""
        return CATEGORY_BY_ANSWER_TYPE[self.answer_type]


CATEGORY_BY_ANSWER_TYPE: dict[AnswerType, str] = {
    "label": "factual",
    "number": "math",
    "text": "factual",
    "json": "extraction",
}
"""Each demo prompt kind's category; `demo_tasks` writes the same ones."""


# --- vocabulary -----------------------------------------------------------------------------

# Word -> label. Every label has at least 8 words, so a classification prompt can
# always draw 3 distractor labels from the other classes.
VOCABULARY: dict[str, str] = {
    **dict.fromkeys(
        ("salmon", "otter", "falcon", "badger", "lizard", "beetle", "dolphin", "sparrow", "moose", "gecko"),
        "animal",
    ),
    **dict.fromkeys(
        ("mango", "apricot", "cherry", "papaya", "lychee", "quince", "plum", "kiwi", "fig", "guava"), "fruit"
    ),
    **dict.fromkeys(
        ("crimson", "teal", "magenta", "ochre", "indigo", "turquoise", "beige", "scarlet", "violet", "amber"),
        "color",
    ),
    **dict.fromkeys(
        ("hammer", "wrench", "chisel", "screwdriver", "pliers", "saw", "trowel", "drill", "rake", "spanner"),
        "tool",
    ),
    **dict.fromkeys(
        ("tram", "canoe", "bicycle", "helicopter", "scooter", "ferry", "tractor", "glider", "van", "yacht"),
        "vehicle",
    ),
    **dict.fromkeys(
        ("violin", "oboe", "cello", "harp", "trumpet", "banjo", "flute", "ukulele", "tuba", "xylophone"),
        "instrument",
    ),
}
LABELS: tuple[str, ...] = tuple(sorted(set(VOCABULARY.values())))
LABELS_PER_PROMPT = 4

# Question -> answer, grouped so that wrong answers come from the same group
# (a wrong capital is another capital, never a paraphrase of the right one).
FACT_GROUPS: dict[str, dict[str, str]] = {
    "capital": {
        "What is the capital of France?": "paris",
        "What is the capital of Japan?": "tokyo",
        "What is the capital of Canada?": "ottawa",
        "What is the capital of Australia?": "canberra",
        "What is the capital of Kenya?": "nairobi",
        "What is the capital of Peru?": "lima",
        "What is the capital of Norway?": "oslo",
        "What is the capital of Egypt?": "cairo",
        "What is the capital of Portugal?": "lisbon",
        "What is the capital of Vietnam?": "hanoi",
    },
    "author": {
        "Who wrote Hamlet?": "william shakespeare",
        "Who wrote Pride and Prejudice?": "jane austen",
        "Who wrote War and Peace?": "leo tolstoy",
        "Who wrote One Hundred Years of Solitude?": "gabriel garcia marquez",
        "Who wrote The Old Man and the Sea?": "ernest hemingway",
        "Who wrote Moby-Dick?": "herman melville",
        "Who wrote Crime and Punishment?": "fyodor dostoevsky",
        "Who wrote Mrs Dalloway?": "virginia woolf",
    },
    "scientist": {
        "Who proposed the theory of general relativity?": "albert einstein",
        "Who discovered penicillin?": "alexander fleming",
        "Who formulated the laws of motion and universal gravitation?": "isaac newton",
        "Who first isolated radium?": "marie curie",
        "Who proposed evolution by natural selection?": "charles darwin",
        "Who discovered the electron?": "j j thomson",
    },
}
FACTS: dict[str, tuple[str, str]] = {q: (a, group) for group, qa in FACT_GROUPS.items() for q, a in qa.items()}
TEXT_SUFFIX = "Answer with the name only."

PEOPLE: tuple[str, ...] = ("maria", "tomas", "aiko", "kwame", "lena", "omar", "priya", "sven", "chloe", "diego")
CITIES: tuple[str, ...] = ("lyon", "porto", "osaka", "accra", "graz", "quito", "pune", "bergen", "cork", "leeds")

# --- prompt shapes (written by `demo_tasks`, parsed by `solve`) ------------------------------

_NUMBER_RE = re.compile(r"What is (-?\d+) ([+\-*]) (-?\d+)\? Answer with a number\.")
_LABEL_RE = re.compile(r"Classify the word '([a-z\-]+)' as one of: ([a-z, ]+)\. Answer with the label only\.")
_JSON_RE = re.compile(
    r"Extract the person's name, age and city from: '([A-Z][a-z]+) is (\d+) years old and lives in "
    r"([A-Z][a-z]+)\.' Answer with a JSON object with the keys name, age and city only\."
)

_OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


def _number_wrong(answer: int) -> tuple[str, ...]:
    # off-by-one and off-by-ten: the slips models actually make in carries and borrows
    return tuple(str(answer + d) for d in (1, -1, 10, -10))


def _json_answer(name: str, age: int, city: str) -> str:
    return orjson.dumps({"name": name, "age": age, "city": city}, option=orjson.OPT_SORT_KEYS).decode()


def solve(prompt: str) -> Truth | None:
    """The correct answer and plausible wrong ones, from the prompt text alone; None when
    the prompt is not one that `demo_tasks` writes. Surrounding text (a system preamble,
    leading/trailing whitespace) is tolerated: the task sentence is searched for."""
    if m := _NUMBER_RE.search(prompt):
        answer = _OPS[m[2]](int(m[1]), int(m[3]))
        return Truth(str(answer), _number_wrong(answer), "number")
    if m := _LABEL_RE.search(prompt):
        word, labels = m[1], [label.strip() for label in m[2].split(",")]
        label = VOCABULARY.get(word)
        if label is None or label not in labels:
            return None
        return Truth(label, tuple(x for x in labels if x != label), "label")
    if m := _JSON_RE.search(prompt):
        name, age, city = m[1].lower(), int(m[2]), m[3].lower()
        other_city = CITIES[(CITIES.index(city) + 1) % len(CITIES)] if city in CITIES else city + "s"
        wrong = (
            _json_answer(name, age + 1, city),
            _json_answer(name, age - 1, city),
            _json_answer(name, age + 10, city),
            _json_answer(name, age, other_city),
        )
        return Truth(_json_answer(name, age, city), wrong, "json")
    for question, (answer, group) in FACTS.items():
        if question in prompt:
            return Truth(answer, tuple(a for a in FACT_GROUPS[group].values() if a != answer), "text")
    return None


# --- generation -----------------------------------------------------------------------------


def _number_task(rng: random.Random) -> tuple[str, str, str]:
    op = rng.choice("+-*")
    if op == "*":
        a, b = rng.randint(2, 19), rng.randint(2, 19)
    else:
        a, b = rng.randint(2, 99), rng.randint(2, 99)
    return f"What is {a} {op} {b}? Answer with a number.", CATEGORY_BY_ANSWER_TYPE["number"], str(_OPS[op](a, b))


def _label_task(rng: random.Random) -> tuple[str, str, str, tuple[str, ...]]:
    word = rng.choice(sorted(VOCABULARY))
    label = VOCABULARY[word]
    labels = [label, *rng.sample([x for x in LABELS if x != label], LABELS_PER_PROMPT - 1)]
    rng.shuffle(labels)
    prompt = f"Classify the word '{word}' as one of: {', '.join(labels)}. Answer with the label only."
    return prompt, CATEGORY_BY_ANSWER_TYPE["label"], label, tuple(labels)


def _text_task(rng: random.Random) -> tuple[str, str, str]:
    question = rng.choice(sorted(FACTS))
    return f"{question} {TEXT_SUFFIX}", CATEGORY_BY_ANSWER_TYPE["text"], FACTS[question][0]


def _json_task(rng: random.Random) -> tuple[str, str, str]:
    name, city, age = rng.choice(PEOPLE), rng.choice(CITIES), rng.randint(18, 80)
    prompt = (
        f"Extract the person's name, age and city from: '{name.title()} is {age} years old and lives in "
        f"{city.title()}.' Answer with a JSON object with the keys name, age and city only."
    )
    return prompt, CATEGORY_BY_ANSWER_TYPE["json"], _json_answer(name, age, city)


# Each draw retries this often to avoid repeating an earlier prompt; the text kind has
# only a few dozen questions, so a large set repeats them rather than looping forever.
_UNIQUE_TRIES = 20


def demo_tasks(n: int, seed: int = 7, kinds: tuple[AnswerType, ...] = ("label", "number")) -> list[LabelledTask]:
    """`n` tasks, the kinds taken in turn, the same list for the same (n, seed, kinds);
    a longer list starts with the shorter one. Prompts repeat only when a kind runs out."""
    if n < 0:
        raise ValueError(f"demo_tasks: n must be >= 0, got {n}")
    unknown = [k for k in kinds if k not in ANSWER_TYPES]
    if unknown or not kinds:
        raise ValueError(f"demo_tasks: kinds {kinds!r}: expected one or more of {', '.join(ANSWER_TYPES)}")
    rng = random.Random(f"swarmstream-demo-tasks:{seed}")
    seen: set[str] = set()
    tasks: list[LabelledTask] = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        for _ in range(_UNIQUE_TRIES):
            labels: tuple[str, ...] = ()
            if kind == "label":
                prompt, category, answer, labels = _label_task(rng)
            elif kind == "number":
                prompt, category, answer = _number_task(rng)
            elif kind == "text":
                prompt, category, answer = _text_task(rng)
            else:
                prompt, category, answer = _json_task(rng)
            if prompt not in seen:
                break
        seen.add(prompt)
        tasks.append(LabelledTask(f"demo-{seed}-{i:05d}", prompt, kind, labels, answer, category))
    return tasks


# --- grading --------------------------------------------------------------------------------

_ANSWER_LINE_RE = re.compile(r"answer\s*(?:is)?\s*[:=]?\s*(.+)", re.IGNORECASE)
_INT_RE = re.compile(r"-?\d+")


def normalise_answer(answer_type: AnswerType, raw: str) -> str | None:
    """The canonical form of an answer (see the module docstring); None when `raw` holds none."""
    text = raw.strip()
    if answer_type == "number":
        m = _INT_RE.search(text.replace(",", ""))
        return str(int(m[0])) if m else None
    if answer_type == "json":
        start, end = text.find("{"), text.rfind("}")
        if start < 0 or end < start:
            return None
        try:
            obj = orjson.loads(text[start : end + 1])
        except orjson.JSONDecodeError:
            return None
        if isinstance(obj, dict):
            obj = {k: v.lower() if isinstance(v, str) else v for k, v in obj.items()}
        return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS).decode()
    text = " ".join(text.casefold().split()).rstrip(".!")
    return text or None


def extract_answer(content: str, answer_type: AnswerType) -> str | None:
    """The normalised answer in a reply worded as the simulator words it: the text after
    the last `Answer:` line, or for text and JSON the whole reply when there is none.
    None when there is no answer. (The pipeline's own parser is `models.parsing`.)"""
    lines = [m[1] for line in content.splitlines() if (m := _ANSWER_LINE_RE.search(line))]
    if lines:
        content = lines[-1]
    elif answer_type in ("label", "number"):
        return None
    return normalise_answer(answer_type, content)
