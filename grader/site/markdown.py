"""Small Markdown helpers shared by the generated pages (resource catalogue, glossary)."""


def table_cell(text: str) -> str:
    """Text safe inside one cell of a Markdown table: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", r"\|")
