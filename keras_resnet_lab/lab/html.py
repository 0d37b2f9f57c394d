"""A self-contained HTML report: figures embedded as data URIs, no network needed to view it."""

import base64
import dataclasses
import html
import os

from keras_resnet_lab.atomic import atomic_path

STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0;
       color: #1d2330; background: #fafbfc; line-height: 1.55; }
header { background: #1d2d50; color: #fff; padding: 28px 40px; }
header h1 { margin: 0 0 6px 0; font-size: 28px; }
header p { margin: 0; opacity: 0.85; }
main { max-width: 1040px; margin: 0 auto; padding: 20px 40px 60px 40px; }
section { background: #fff; border: 1px solid #e3e7ee; border-radius: 8px; padding: 18px 24px;
          margin: 22px 0; }
h2 { font-size: 21px; margin: 0 0 10px 0; color: #1d2d50; }
p.reading { margin: 10px 0 14px 0; }
figure { margin: 10px 0; text-align: center; }
figure img { max-width: 100%; border: 1px solid #eef0f4; border-radius: 4px; }
figcaption { font-size: 13px; color: #5b6475; margin-top: 4px; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { border-bottom: 1px solid #e3e7ee; padding: 6px 8px; text-align: left; }
th { background: #f2f4f8; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.verdicts { margin: 0 0 8px 0; }
.verdict { display: inline-block; font-size: 13px; font-weight: 600; padding: 2px 8px;
           border-radius: 10px; margin: 0 6px 4px 0; color: #fff; }
.verdict.held { background: #1a7f37; }
.verdict.not-held { background: #b3261e; }
.verdict.inconclusive { background: #b7791f; }
.verdict.descriptive { background: #7a8294; }
footer { font-size: 12px; color: #7a8294; text-align: center; padding: 20px; }
"""


@dataclasses.dataclass
class Figure:
    """A PNG file shown in a section, with its caption."""

    path: str
    caption: str


@dataclasses.dataclass
class Section:
    """One step of the story: a title, a paragraph read from this run's numbers, figures, and
    the verdict of each finding it tests (``(finding title, verdict)`` pairs; none: the section
    is descriptive and says so)."""

    title: str
    reading: str
    figures: list = dataclasses.field(default_factory=list)
    verdicts: list = dataclasses.field(default_factory=list)


def _labels(verdicts):
    if not verdicts:
        return "<p class='verdicts'><span class='verdict descriptive'>descriptive: no finding " \
               "tested</span></p>"
    spans = "".join(f"<span class='verdict {v.replace(' ', '-')}'>{html.escape(title)}: "
                    f"{html.escape(v)}</span>" for title, v in verdicts)
    return f"<p class='verdicts'>{spans}</p>"


def _data_uri(path):
    with open(path, "rb") as f:
        return "data:image/png;base64," + base64.b64encode(f.read()).decode("ascii")


def _table(rows):
    body = "".join(
        f"<tr><td>{html.escape(str(k))}</td><td class='num'>{html.escape(str(v))}</td></tr>"
        for k, v in rows)
    return f"<table><tr><th>figure</th><th>value</th></tr>{body}</table>"


def render(path, title, subtitle, sections, key_figures, footer=""):
    """Write the report to ``path`` atomically and return the path.

    Args:
        path: the ``.html`` file.
        title, subtitle: page header.
        sections: list of :class:`Section`.
        key_figures: list of ``(name, value)`` rows for the table of key figures.
        footer: small print at the bottom (versions, command).
    """
    parts = [f"<section><h2>Key figures</h2>{_table(key_figures)}</section>"]
    for section in sections:
        figures = "".join(
            f"<figure><img src='{_data_uri(fig.path)}' alt='{html.escape(fig.caption)}'>"
            f"<figcaption>{html.escape(fig.caption)}</figcaption></figure>"
            for fig in section.figures if os.path.exists(fig.path))
        parts.append(f"<section><h2>{html.escape(section.title)}</h2>"
                     f"{_labels(section.verdicts)}"
                     f"<p class='reading'>{html.escape(section.reading)}</p>{figures}</section>")
    page = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
            f"<header><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p></header>"
            f"<main>{''.join(parts)}</main><footer>{html.escape(footer)}</footer>"
            "</body></html>")
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(page)
    return path
