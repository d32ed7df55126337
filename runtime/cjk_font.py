"""The CJK font biotag ships: Noto Sans CJK (SIL Open Font License 1.1), from the PyPI package
``noto-cjk-sans-otc`` (the OpenType collection ``NotoSansCJK-Regular.ttc``, installed with biotag,
never downloaded at run time).

A machine without any Chinese font would show every Chinese character as a box. So:

* the desktop app registers this collection with Qt when the system has no Chinese font
  (``biotag.desktop.fonts``), which the GUI and its PDF reports then use;
* HTML reports embed the glyphs of the CJK characters they contain (a subset of the Simplified
  Chinese face, a few KiB to a few hundred KiB, as a data URL), listed after the system fonts, so a
  report shows Chinese on any viewer's machine and looks native where a CJK font is installed.
"""
from __future__ import annotations

import base64
import io
from pathlib import Path

FAMILY = "Noto Sans CJK SC"          # the face biotag uses (Simplified Chinese)
FACE_INDEX = 2                       # its index in NotoSansCJK-Regular.ttc: JP, KR, SC, TC, HK, Mono...
EMBED_FAMILY = "biotag CJK"          # the family name of the subset embedded in HTML
LICENCE = "SIL Open Font License 1.1 (Noto Sans CJK, Google / Adobe)"

_CJK_RANGES = ((0x2E80, 0x2FDF), (0x3000, 0x303F), (0x3040, 0x30FF), (0x3100, 0x312F), (0x3190, 0x31FF),
               (0x3200, 0x33FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xAC00, 0xD7AF), (0xF900, 0xFAFF),
               (0xFE30, 0xFE4F), (0xFF00, 0xFFEF), (0x20000, 0x3134F))


def font_path() -> Path | None:
    """The shipped collection, or None when the font package is not installed."""
    try:
        import noto_cjk_sans_otc
    except ImportError:
        return None
    p = Path(str(noto_cjk_sans_otc.FONT_PATH))
    return p if p.is_file() else None


def is_cjk(ch: str) -> bool:
    o = ord(ch)
    return any(a <= o <= b for a, b in _CJK_RANGES)


def cjk_chars(text: str) -> str:
    """The distinct CJK characters of ``text``, sorted."""
    return "".join(sorted({c for c in text if is_cjk(c)}))


def subset_font(chars: str) -> bytes | None:
    """An OpenType (CFF) font with the glyphs of ``chars`` from the shipped face; None without the
    package, fontTools, or characters to cover."""
    path = font_path()
    if not chars or path is None:
        return None
    try:
        from fontTools import subset
        from fontTools.ttLib import TTFont
    except ImportError:
        return None
    font = TTFont(str(path), fontNumber=FACE_INDEX, lazy=False)
    opts = subset.Options()
    opts.layout_features = ["*"]
    opts.notdef_outline = True
    opts.name_IDs = [0, 1, 2, 3, 4, 5, 6, 13, 14]     # keep the copyright and licence names (OFL)
    opts.name_languages = ["*"]
    sub = subset.Subsetter(opts)
    sub.populate(text=chars)
    sub.subset(font)
    buf = io.BytesIO()
    font.save(buf)
    return buf.getvalue()


def font_face_css(text: str) -> str:
    """A CSS ``@font-face`` rule for ``EMBED_FAMILY`` holding the glyphs of the CJK characters of
    ``text`` ("" when it has none or the font cannot be subset)."""
    data = subset_font(cjk_chars(text))
    if not data:
        return ""
    b64 = base64.b64encode(data).decode("ascii")
    return (f"@font-face{{font-family:'{EMBED_FAMILY}';src:url(data:font/otf;base64,{b64}) "
            f"format('opentype')}}\n")
