"""The catalogue as Markdown pages for the site (English or Chinese), by kind, then primary topic."""
from __future__ import annotations

from collections import Counter
from typing import Any

from grader.site.markdown import table_cell
from .load import allowed_topics, normalise_title, normalise_url

# Page order on the site: what a learner starts with first.
KIND_PAGES = {
    "course": "courses",
    "lecture": "lectures",
    "book": "books",
    "paper": "papers",
    "conference": "conferences",
    "library": "libraries",
    "platform": "platforms",
}

KIND_LABELS = {
    "course": ("Courses", "课程"),
    "lecture": ("Lectures and talks", "讲座与报告"),
    "book": ("Books", "书籍"),
    "paper": ("Papers", "论文"),
    "conference": ("Conferences", "学术会议"),
    "library": ("Libraries and frameworks", "软件库与框架"),
    "platform": ("Platforms", "平台"),
}

TOPIC_LABELS = {
    "foundations": ("Foundations of machine learning", "机器学习基础"),
    "mathematics": ("Mathematics for machine learning", "机器学习的数学基础"),
    "neural-networks": ("Neural networks and forward propagation", "神经网络与前向传播"),
    "backpropagation": ("Backpropagation", "反向传播"),
    "optimization": ("Optimization and gradient descent", "优化与梯度下降"),
    "initialization": ("Weight initialization", "参数初始化"),
    "regularization": ("Regularization", "正则化"),
    "normalization": ("Normalization layers", "归一化"),
    "computer-vision": ("Computer vision and CNNs", "计算机视觉与卷积神经网络"),
    "sequence-models": ("Sequence models (RNN, LSTM, seq2seq)", "序列模型（RNN、LSTM、seq2seq）"),
    "attention": ("Attention", "注意力机制"),
    "transformers": ("Transformers", "Transformer"),
    "nlp": ("Natural language processing", "自然语言处理"),
    "pretraining": ("Pre-training", "预训练"),
    "fine-tuning": ("Fine-tuning", "微调"),
    "alignment": ("Alignment (RLHF and preference learning)", "对齐（RLHF 与偏好学习）"),
    "scaling": ("Scaling laws", "缩放定律"),
    "large-language-models": ("Large language models", "大模型（大语言模型）"),
    "frameworks": ("Frameworks and tools", "框架与工具"),
    "research-community": ("Research community and conferences", "学术社区与会议"),
    "probabilistic-ml": ("Probabilistic machine learning", "概率机器学习"),
}

LEVEL_LABELS = {
    "beginner": ("beginner", "入门"),
    "intermediate": ("intermediate", "进阶"),
    "advanced": ("advanced", "高级"),
}

LANGUAGE_LABELS = {"en": ("English", "英文"), "zh": ("Chinese", "中文")}

# Every fixed string of the pages, in both languages.
TEXT = {
    "en": {
        "authors": "Authors",
        "organisation": "Organisation",
        "year": "Year",
        "level": "Level",
        "language": "Language",
        "access": "Access",
        "free": "free",
        "paid": "paid",
        "venue": "Venue",
        "publisher": "Publisher",
        "links": "Links",
        "official": "Official page",
        "topics": "Topics",
        "verified": "Verified against",
        "correction_title": "Corrected from the source document",
        "source_said": "The source document said",
        "index_title": "Learning resources",
        "index_intro": (
            "A curated catalogue of the courses, books, papers, lectures and tools this course "
            "recommends. Every entry was checked against a primary source (the arXiv abstract, "
            "the DOI record, the publisher's or the author's own page); the line *Verified against* "
            "says which. Entries marked as coming from the source document are the resources that "
            "the document this course grew from recommends; where it named them wrongly, the entry "
            "carries the correction."
        ),
        "cite_hint": "Pages of this site cite an entry as `[@entry-id]`; the link leads here.",
        "by_kind": "Browse by kind",
        "kind": "Kind",
        "entries": "Entries",
        "corrections": "Corrections to the source document",
        "corrections_intro": (
            "The source document's list of resources (its section 6) contained the errors below. "
            "Each row links to the corrected entry."
        ),
        "correction": "Correction",
        "entry": "Entry",
        "all_entries": "All entries",
        "from_source": "Named by the source document",
        "yes": "yes",
        "none": "None.",
    },
    "zh": {
        "authors": "作者",
        "organisation": "机构",
        "year": "年份",
        "level": "难度",
        "language": "语言",
        "access": "获取方式",
        "free": "免费",
        "paid": "付费",
        "venue": "发表于",
        "publisher": "出版社",
        "links": "链接",
        "official": "官方页面",
        "topics": "主题",
        "verified": "核实依据",
        "correction_title": "对来源文档的更正",
        "source_said": "来源文档的写法",
        "index_title": "学习资源",
        "index_intro": (
            "本课程推荐的课程、书籍、论文、讲座与工具的精选目录。每一条都对照过一手来源"
            "（arXiv 摘要页、DOI 记录、出版社或作者本人的页面），“核实依据”一栏写明对照的是哪一个。"
            "标注为“来源文档推荐”的条目，是本课程所依据的原始文档列出的资源；原文写错的地方，条目中附有更正说明。"
        ),
        "cite_hint": "本站页面用 `[@条目id]` 引用条目，链接会指向这里。",
        "by_kind": "按类别浏览",
        "kind": "类别",
        "entries": "条目数",
        "corrections": "对来源文档的更正",
        "corrections_intro": "来源文档第 6 节的资源列表有以下错误，每一行都链接到更正后的条目。",
        "correction": "更正说明",
        "entry": "条目",
        "all_entries": "全部条目",
        "from_source": "来源文档推荐",
        "yes": "是",
        "none": "无。",
    },
}


def kind_page_name(kind: str) -> str:
    return f"{KIND_PAGES[kind]}.md"


def _pick(pair: tuple[str, str], lang: str) -> str:
    return pair[1] if lang == "zh" else pair[0]


def render_resources_pages(catalogue: list[dict[str, Any]], lang: str = "en") -> dict[str, str]:
    """Markdown pages: ``resources/index.md`` plus one page per kind present (``resources/papers.md``...).

    The same page paths are returned for both languages; where the Chinese pages go is the
    site's decision. Within a kind page, entries are grouped under their primary (first) topic,
    in the schema's topic order, and sorted by year and title.
    """
    if lang not in TEXT:
        raise ValueError(f"unsupported language {lang!r}; expected one of {sorted(TEXT)}")
    pages = {"resources/index.md": _render_index(catalogue, lang)}
    for kind in KIND_PAGES:
        entries = [entry for entry in catalogue if entry["kind"] == kind]
        if entries:
            pages[f"resources/{kind_page_name(kind)}"] = _render_kind_page(kind, entries, lang)
    return pages


def _render_kind_page(kind: str, entries: list[dict[str, Any]], lang: str) -> str:
    lines = [f"# {_pick(KIND_LABELS[kind], lang)}", ""]
    for topic in allowed_topics():
        group = sorted(
            (entry for entry in entries if entry["topics"][0] == topic),
            key=lambda entry: (entry["year"], normalise_title(entry["title"])),
        )
        if not group:
            continue
        lines += [f"## {_pick(TOPIC_LABELS[topic], lang)}", ""]
        for entry in group:
            lines += _render_entry(entry, lang)
    return "\n".join(lines).rstrip() + "\n"


def _render_entry(entry: dict[str, Any], lang: str) -> list[str]:
    text = TEXT[lang]
    if entry.get("authors"):
        people = ", ".join(entry["authors"]) + (" et al." if entry.get("et_al") else "")
        who = f"**{text['authors']}:** {people}"
    else:
        who = f"**{text['organisation']}:** {entry['organisation']}"
    facts = " · ".join([
        f"**{text['year']}:** {entry['year']}",
        f"**{text['level']}:** {_pick(LEVEL_LABELS[entry['level']], lang)}",
        f"**{text['language']}:** {_pick(LANGUAGE_LABELS.get(entry['language'], (entry['language'],) * 2), lang)}",
        f"**{text['access']}:** {text['free'] if entry['free'] else text['paid']}",
    ])
    lines = [f'<a id="{entry["id"]}"></a>', "", f"### {entry['title']}", "", f"- {who}", f"- {facts}"]
    if "venue" in entry:
        lines.append(f"- **{text['venue']}:** {entry['venue']}")
    if "publisher" in entry:
        lines.append(f"- **{text['publisher']}:** {entry['publisher']}")
    lines.append(f"- **{text['links']}:** {' · '.join(identifier_links(entry, lang))}")
    topics = ", ".join(_pick(TOPIC_LABELS[topic], lang) for topic in entry["topics"])
    lines.append(f"- **{text['topics']}:** {topics}")
    lines.append(f"- **{text['verified']}:** {entry['verified']}")
    lines += ["", entry["summary_zh"] if lang == "zh" else entry["summary"], ""]
    if "note" in entry:
        note = entry["note_zh"] if lang == "zh" else entry["note"]
        lines += [
            f'!!! note "{text["correction_title"]}"',
            f"    {text['source_said']}: {entry['source_text']}",
            "",
            f"    {note}",
            "",
        ]
    return lines


def identifier_links(entry: dict[str, Any], lang: str = "en") -> list[str]:
    """The official page, arXiv and DOI as links; the ISBN as plain text.

    The official page is left out when it is the arXiv or DOI page itself, to avoid two links
    to one place.
    """
    identifiers = []
    if "arxiv" in entry:
        identifiers.append((f"arXiv:{entry['arxiv']}", f"https://arxiv.org/abs/{entry['arxiv']}"))
    if "doi" in entry:
        identifiers.append((f"doi:{entry['doi']}", f"https://doi.org/{entry['doi']}"))
    links = [f"[{label}]({url})" for label, url in identifiers]
    if normalise_url(entry["url"]) not in {normalise_url(url) for _label, url in identifiers}:
        links.insert(0, f"[{TEXT[lang]['official']}]({entry['url']})")
    if "isbn" in entry:
        links.append(f"ISBN {entry['isbn']}")
    return links


def _render_index(catalogue: list[dict[str, Any]], lang: str) -> str:
    text = TEXT[lang]
    counts = Counter(entry["kind"] for entry in catalogue)
    lines = [f"# {text['index_title']}", "", text["index_intro"], "", text["cite_hint"], ""]

    lines += [f"## {text['by_kind']}", "", f"| {text['kind']} | {text['entries']} |", "| --- | ---: |"]
    for kind in KIND_PAGES:
        if counts[kind]:
            lines.append(f"| [{_pick(KIND_LABELS[kind], lang)}]({kind_page_name(kind)}) | {counts[kind]} |")
    lines.append("")

    corrected = [entry for entry in catalogue if "note" in entry]
    lines += [f"## {text['corrections']}", "", text["corrections_intro"], ""]
    if corrected:
        lines += [f"| {text['source_said']} | {text['entry']} | {text['correction']} |", "| --- | --- | --- |"]
        for entry in corrected:
            note = entry["note_zh"] if lang == "zh" else entry["note"]
            link = f"[{table_cell(entry['title'])}]({kind_page_name(entry['kind'])}#{entry['id']})"
            lines.append(f"| {table_cell(entry['source_text'])} | {link} | {table_cell(note)} |")
    else:
        lines.append(text["none"])
    lines.append("")

    # One anchor per entry here too, so a citation that links to the index lands on its row.
    lines += [
        f"## {text['all_entries']}",
        "",
        f"| {text['entry']} | {text['kind']} | {text['year']} | {text['from_source']} |",
        "| --- | --- | ---: | --- |",
    ]
    for entry in sorted(catalogue, key=lambda entry: normalise_title(entry["title"])):
        anchor = f'<a id="{entry["id"]}"></a>'
        link = f"[{table_cell(entry['title'])}]({kind_page_name(entry['kind'])}#{entry['id']})"
        source = text["yes"] if entry.get("from_source") else ""
        lines.append(f"| {anchor}{link} | {_pick(KIND_LABELS[entry['kind']], lang)} | {entry['year']} | {source} |")
    return "\n".join(lines) + "\n"
