"""Fonts that render English and Chinese: an explicit family list with CJK fallbacks, so Chinese
never shows as empty boxes. When the system has no Chinese font at all, the Noto Sans CJK collection
shipped with biotag (``biotag.runtime.cjk_font``) is registered with Qt and used by the GUI and its
PDF reports."""
from __future__ import annotations

from PySide6.QtGui import QFont, QFontDatabase

LATIN = ["Noto Sans", "Segoe UI", "Helvetica Neue", "DejaVu Sans", "Arial"]
CJK = ["Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN",
       "Microsoft YaHei", "PingFang SC", "Hiragino Sans GB", "WenQuanYi Micro Hei",
       "WenQuanYi Zen Hei", "Noto Sans CJK TC", "Noto Sans CJK JP", "SimSun"]
MONO = ["Noto Sans Mono", "DejaVu Sans Mono", "Consolas", "Menlo", "Noto Sans Mono CJK SC"]


def installed(families: list[str]) -> list[str]:
    have = set(QFontDatabase.families())
    return [f for f in families if f in have]


def has_cjk_font() -> bool:
    """True when some installed font can show Simplified Chinese."""
    if installed(CJK):
        return True
    return bool(QFontDatabase.families(QFontDatabase.WritingSystem.SimplifiedChinese))


_SHIPPED: list[str] | None = None


def ensure_cjk_font() -> list[str]:
    """Register the shipped CJK collection with Qt (once, and only when the system has no Chinese
    font; needs a QGuiApplication). Returns the families it added."""
    global _SHIPPED
    if _SHIPPED is None:
        _SHIPPED = []
        if not has_cjk_font():
            from biotag.runtime.cjk_font import font_path

            path = font_path()
            font_id = QFontDatabase.addApplicationFont(str(path)) if path is not None else -1
            if font_id >= 0:
                _SHIPPED = list(QFontDatabase.applicationFontFamilies(font_id))
    return _SHIPPED


def families() -> list[str]:
    """Preferred families, in order: the system UI font, Latin faces, CJK faces."""
    ensure_cjk_font()
    ui = QFont().family()
    out = [ui] + [f for f in installed(LATIN + CJK) if f != ui]
    if not installed(CJK):
        out += [f for f in QFontDatabase.families(QFontDatabase.WritingSystem.SimplifiedChinese)[:2]
                if f not in out]
    return out


def text_font(point_size: float = 12) -> QFont:
    f = QFont()
    f.setFamilies(families())
    f.setPointSizeF(point_size)
    f.setStyleStrategy(QFont.StyleStrategy.PreferAntialias)
    return f
