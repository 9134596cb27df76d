"""mkdocs hook: the site's home page is the repository's README (one text, no copy), with its links to
``docs/PAGE.md`` made relative to the site."""
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def on_page_markdown(markdown, page, **kwargs):
    if page.file.src_uri == "index.md":
        return README.read_text().replace("](docs/", "](")
    return markdown
