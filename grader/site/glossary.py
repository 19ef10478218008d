"""The course glossary (grader/site/glossary.yaml): load it, render its table, teach its words.

One list of terms serves three ends: the side-by-side table on docs/glossary.md and
docs/glossary.zh.md, the word list that keeps the search's Chinese word splitter from
cutting 反向传播 into 反向 + 传播, and the consistency test of the Chinese pages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from .markdown import table_cell

GLOSSARY_FILE = Path(__file__).with_name("glossary.yaml")
SCHEMA_FILE = Path(__file__).with_name("glossary.schema.json")  # one term
TABLE_MARKER = "<!-- glossary-table -->"

# Link text for the page a term is explained on, in each language.
PAGE_NAMES = {
    "concepts.md": ("Concepts", "基本概念"),
    "algorithms.md": ("Core algorithms", "核心算法"),
    "attention.md": ("Attention and transformers", "注意力与 Transformer"),
    "llm.md": ("Large language models", "大语言模型"),
    "modern.md": ("Modern LLM architecture and inference", "现代大语言模型的架构与推理部署"),
    "post_training.md": ("Post-training", "后训练"),
    "practice.md": ("Practice", "动手实践"),
    "applications.md": ("Applications", "应用领域"),
    "trends.md": ("Trends and challenges", "趋势与挑战"),
    "faq.md": ("FAQ", "常见问题"),
    "training_at_scale.md": ("Training at scale", "大规模训练"),
    "data_evaluation.md": ("Data and evaluation", "数据与评估"),
    "open_models.md": ("Open-weight models", "开放权重模型"),
}


class GlossaryError(ValueError):
    """glossary.yaml is malformed."""


@dataclass(frozen=True)
class Term:
    en: str
    zh: str
    en_def: str
    zh_def: str
    see: str
    avoid: tuple[str, ...] = ()


def load_glossary(path: Path = GLOSSARY_FILE) -> list[Term]:
    """Every term, in file order; a malformed entry fails naming the file, the entry and the field."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise GlossaryError(f"{path}: cannot be read as YAML ({err})") from err
    if not isinstance(data, list) or not data:
        raise GlossaryError(f"{path}: expected a non-empty list of terms")
    terms, seen = [], set()
    for number, entry in enumerate(data, start=1):
        label = f"{path}: term {number}"
        if not isinstance(entry, dict):
            raise GlossaryError(f"{label} is not a mapping")
        label = f"{path}: term {number} ({entry.get('en', '?')})"
        problem = _schema_problem(entry)
        if problem:
            raise GlossaryError(f"{label}: {problem}")
        page = entry["see"].split("#")[0]
        if page not in PAGE_NAMES or "#" not in entry["see"]:
            raise GlossaryError(f"{label}: 'see' must be page.md#anchor on one of {sorted(PAGE_NAMES)}")
        avoid = entry.get("avoid", [])
        if entry["zh"] in seen:
            raise GlossaryError(f"{label}: the Chinese term {entry['zh']} is listed twice")
        seen.add(entry["zh"])
        terms.append(Term(entry["en"], entry["zh"], entry["en_def"], entry["zh_def"], entry["see"], tuple(avoid)))
    return terms


@lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


def _schema_problem(entry: dict[str, Any]) -> str | None:
    """The first way ``entry`` breaks the schema, in the schema's field order, as one phrase."""
    from grader.catalogue.load import jsonschema  # imported without its slow optional grammar

    schema = _schema()
    order = list(schema["properties"])
    problems = []
    for error in jsonschema.Draft202012Validator(schema).iter_errors(entry):
        if error.validator == "required":
            field = next(name for name in error.validator_value if name not in entry)
            problems.append((field, f"field '{field}' is missing or empty"))
        elif error.validator == "additionalProperties":
            unknown = sorted(set(entry) - set(order))
            problems.append((unknown[0], f"unknown field(s) {unknown}"))
        else:
            field = str(error.absolute_path[0])
            problems.append((field, schema["properties"][field].get("x-error", f"field '{field}' is missing or empty")))
    problems.sort(key=lambda problem: order.index(problem[0]) if problem[0] in order else len(order))
    return problems[0][1] if problems else None


def glossary_table(terms: list[Term], lang: str) -> str:
    """The Markdown table, English first on the English page and Chinese first on the Chinese one."""
    chinese = lang == "zh"
    if chinese:
        rows = ["| 中文 | English | 定义 | Definition | 详见 |", "|---|---|---|---|---|"]
    else:
        rows = ["| English | 中文 | Definition | 定义 | Explained in |", "|---|---|---|---|---|"]
    for term in terms:
        page, _anchor = term.see.split("#")
        link = f"[{PAGE_NAMES[page][1 if chinese else 0]}]({term.see})"
        names = [f"**{table_cell(term.zh)}**", table_cell(term.en)] if chinese else [f"**{table_cell(term.en)}**", table_cell(term.zh)]
        defs = [table_cell(term.zh_def), table_cell(term.en_def)] if chinese else [table_cell(term.en_def), table_cell(term.zh_def)]
        rows.append(f"| {' | '.join(names + defs)} | {link} |")
    return "\n".join(rows) + "\n"


def teach_word_splitter(terms: list[Term]) -> bool:
    """Tell jieba (the search plugin's Chinese word splitter) each glossary term is one word.

    Returns False when jieba is not installed; the search then indexes Chinese without
    word boundaries, which the site test catches.
    """
    try:
        import jieba
    except ImportError:
        return False
    jieba.setLogLevel(60)  # silence "Building prefix dict..." on every build
    for term in terms:
        jieba.add_word(term.zh, freq=1_000_000)
    return True
