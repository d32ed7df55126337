"""Self-contained HTML report of tagged documents: inline CSS, nested entities drawn as stacked
underline bars (one per nesting level) with a tint, a legend and an entity summary table.
Also used by the desktop app (which adds review marks)."""
from __future__ import annotations

import datetime as _dt
import html
from collections import Counter
from typing import Sequence

from .document import Document, Entity

# Okabe-Ito (colour-blind safe) first, then Paul Tol's muted set
PALETTE = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#999999",
           "#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677", "#882255",
           "#AA4499"]


def type_colors(types: Sequence[str]) -> dict[str, str]:
    from .labels import TYPE_ORDER

    order = [t for t in TYPE_ORDER if t in types] + sorted(set(types) - set(TYPE_ORDER))
    return {t: PALETTE[TYPE_ORDER.index(t) % len(PALETTE)] if t in TYPE_ORDER
            else PALETTE[(len(TYPE_ORDER) + k) % len(PALETTE)] for k, t in enumerate(order)}


def levels(entities: Sequence[Entity]) -> dict[int, int]:
    """Nesting level of each entity (by index): 1 = innermost, outer entities are higher."""
    lv = {}
    order = sorted(range(len(entities)), key=lambda i: len(entities[i]))
    for i in order:
        e = entities[i]
        inner = [lv[j] for j in lv if j != i and e.start <= entities[j].start and entities[j].end <= e.end]
        lv[i] = 1 + max(inner, default=0)
    return lv


# how the reports draw an entity's assertion status (present entities are drawn plainly)
ASSERTION_CSS = {"negated": "text-decoration:line-through;", "possible": "font-style:italic;"}
ASSERTION_BAR = {"negated": "dashed", "possible": "dotted"}
ASSERTION_LEGEND = {"negated": "negated: struck through, dashed bar",
                    "possible": "possible: italic, dotted bar",
                    "historical": "historical: in the patient's past",
                    "family": "family: about another person"}


def assertion_legend(docs: Sequence[Document]) -> str:
    """HTML: how many entities have each assertion other than present, and how they are drawn."""
    counts = Counter(e.assertion for d in docs for e in d.entities)
    bits = [f"<span style='{ASSERTION_CSS.get(a, '')}'>{html.escape(ASSERTION_LEGEND[a])}</span> ({counts[a]})"
            for a in ASSERTION_LEGEND if counts[a]]
    if not bits:
        return "Assertion: every entity is present (none negated, possible, historical or family)."
    return "Assertion: " + " · ".join(bits) + "; the others are present."


def _label(e: Entity) -> str:
    s = f"{e.type}"
    if e.assertion != "present":
        s += f" · {e.assertion}"
    if e.score is not None:
        s += f" · score {e.score:.2f}"
    if e.source:
        s += f" · {e.source}"
    if e.meta.get("review"):
        s += f" · {e.meta['review']}"
    return s + f" · [{e.start}, {e.end}) “{e.text}”"


def render_text(doc: Document, colors: dict[str, str]) -> str:
    """The text with entities as nested <span>s (crossing entities are cut into pieces)."""
    ents = doc.sorted_entities()
    lv = levels(ents)
    cuts = sorted({0, len(doc.text)} | {e.start for e in ents} | {e.end for e in ents})
    out = []
    for a, b in zip(cuts, cuts[1:]):
        piece = html.escape(doc.text[a:b]).replace("\n", "<br>\n")
        cover = [i for i, e in enumerate(ents) if e.start <= a and b <= e.end]
        cover.sort(key=lambda i: (-lv[i], ents[i].start))
        for i in reversed(cover):  # innermost first, wrapped by the outer ones
            e = ents[i]
            c = colors.get(e.type, "#999999")
            tint = f"background:{c}33;" if lv[i] == 1 else ""
            bar = ASSERTION_BAR.get(e.assertion, "solid")
            piece = (f'<span class="ent" data-type="{html.escape(e.type)}" data-assertion="{e.assertion}" '
                     f'title="{html.escape(_label(e))}" '
                     f'style="border-bottom:3px {bar} {c};padding-bottom:{1 + 5 * (lv[i] - 1)}px;{tint}'
                     f'{ASSERTION_CSS.get(e.assertion, "")}">'
                     f"{piece}</span>")
        out.append(piece)
    return "".join(out)


CSS = """body{font-family:system-ui,-apple-system,'Segoe UI','Noto Sans','Noto Sans CJK SC','biotag CJK',sans-serif;
max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
.doc{line-height:2.6;font-size:1.05rem;border:1px solid #ddd;padding:1rem 1.2rem;border-radius:6px}
.legend span{display:inline-block;margin:0 .8rem .3rem 0}.sw{width:1rem;height:.7rem;display:inline-block;
vertical-align:middle;margin-right:.3rem}table{border-collapse:collapse;margin-top:1rem;width:100%}
td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;font-size:.9rem}th{background:#f4f4f4}
.meta{color:#666;font-size:.85rem}"""


def render_report(docs: Sequence[Document], bundle: str = "", title: str = "biotag report") -> str:
    types = sorted({e.type for d in docs for e in d.entities})
    colors = type_colors(types)
    now = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    parts = [f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{CSS}</style></head><body>", f"<h1>{html.escape(title)}</h1>",
             f"<p class='meta'>Generated {now} by biotag{(' · model ' + html.escape(bundle)) if bundle else ''}. "
             "Bars under the text mark entities; stacked bars are nested entities (lowest = outermost). "
             "Hover an entity for its type, score and offsets.</p>",
             "<div class='legend'>" + "".join(
                 f"<span><i class='sw' style='background:{colors[t]}'></i>{html.escape(t)}</span>" for t in types)
             + "</div>", f"<p class='meta'>{assertion_legend(docs)}</p>"]
    for d in docs:
        counts = Counter(e.type for e in d.entities)
        parts.append(f"<h2>{html.escape(d.id)}</h2>")
        parts.append(f"<p class='meta'>{len(d.entities)} entities: "
                     + ", ".join(f"{html.escape(t)} {n}" for t, n in sorted(counts.items())) + "</p>")
        parts.append(f"<div class='doc'>{render_text(d, colors)}</div>")
        rows = "".join(
            f"<tr><td>{html.escape(e.type)}</td><td>{html.escape(e.text)}</td><td>{e.start}</td><td>{e.end}</td>"
            f"<td>{'' if e.score is None else f'{e.score:.2f}'}</td><td>{html.escape(e.source or '')}</td>"
            f"<td>{e.assertion}</td><td>{html.escape(str(e.meta.get('review', '')))}</td></tr>"
            for e in d.sorted_entities())
        parts.append("<table><tr><th>type</th><th>text</th><th>start</th><th>end</th><th>score</th>"
                     f"<th>source</th><th>assertion</th><th>review</th></tr>{rows}</table>")
    parts.append("</body></html>\n")
    page = "\n".join(parts)
    from .cjk_font import font_face_css   # Chinese shows on a viewer without a CJK font

    face = font_face_css(page)
    return page.replace("<style>", "<style>" + face, 1) if face else page
