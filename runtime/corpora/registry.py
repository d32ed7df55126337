"""The registry of corpora under ``shared/data``: where each split is, in which format, and how
it is read."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from ..document import Document
from ..errors import InputError
from .repairs import ReadReport
from .bio import read_char_bio, read_conll, read_iob_tsv
from .standoff import read_brat, read_pubtator
from .jsonfmt import read_chineseblue_jsonl, read_cmeee_json, read_genia_jsonl


# ---------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------
FORMATS: dict[str, Callable[..., Iterator[Document]]] = {
    "iob-tsv": read_iob_tsv,
    "conll": read_conll,
    "char-bio": read_char_bio,
    "brat": read_brat,
    "genia-jsonl": read_genia_jsonl,
    "cmeee-json": read_cmeee_json,
    "chineseblue-jsonl": read_chineseblue_jsonl,
    "pubtator": read_pubtator,
}


@dataclass(frozen=True, eq=False)
class CorpusSpec:
    """One corpus: where its files are, how to read them and how the README counts it."""

    name: str
    folder: str                   # relative to the data folder
    format: str                   # key of FORMATS
    splits: dict[str, str]        # split -> file or folder, relative to ``folder``
    lang: str
    labels: str                   # key of labels.LABEL_MAP / EXTRA_LABEL_MAP
    unit: str = "sentences"       # what one Document is: sentences | documents | records
    nested: bool = False
    options: dict = field(default_factory=dict)   # extra reader keyword arguments
    extra: bool = False

    def path(self, split: str, data_dir=None) -> Path:
        if split not in self.splits:
            raise InputError(f"corpus {self.name!r} has no split {split!r} "
                             f"(splits: {', '.join(self.splits)})")
        return resolve_data_dir(data_dir) / self.folder / self.splits[split]

    def read(self, split: str, data_dir=None, report: ReadReport | None = None) -> Iterator[Document]:
        p = self.path(split, data_dir)
        if not p.exists():
            raise InputError(f"corpus {self.name!r} split {split!r}: {p} is missing "
                             f"(pass --data-dir or set BIOTAG_DATA_DIR)")
        if report is not None:
            report.corpus, report.split = report.corpus or self.name, report.split or split
        return FORMATS[self.format](p, corpus=self.name, split=split, label_key=self.labels,
                                    lang=self.lang, report=report, **self.options)

    def to_json(self) -> dict:
        return {"name": self.name, "folder": self.folder, "format": self.format,
                "splits": dict(self.splits), "lang": self.lang, "labels": self.labels,
                "unit": self.unit, "nested": self.nested, "extra": self.extra}


_TSV = {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"}
CLINICAL = ("maccrobat2020", "chia")
_EXTRA = ["anatem", "bionlp09", "bionlp11epi", "bionlp11id", "bionlp13cg", "bionlp13ge",
          "bionlp13pc", "ex-ptm"]

CORPORA: dict[str, CorpusSpec] = {s.name: s for s in [
    CorpusSpec("ncbi-disease", "ncbi-disease", "iob-tsv", dict(_TSV), "en", "ncbi-disease"),
    CorpusSpec("bc5cdr", "bc5cdr", "iob-tsv", dict(_TSV), "en", "bc5cdr"),
    CorpusSpec("bc5cdr-pubtator", "bc5cdr/pubtator", "pubtator",
               {"train": "train.PubTator.txt", "dev": "dev.PubTator.txt",
                "test": "test.PubTator.txt"}, "en", "bc5cdr", unit="documents"),
    CorpusSpec("bc2gm", "bc2gm", "iob-tsv", dict(_TSV), "en", "bc2gm"),
    CorpusSpec("jnlpba", "jnlpba", "brat", {"train": "train", "dev": "dev", "test": "test"},
               "en", "jnlpba", unit="documents"),
    CorpusSpec("linnaeus", "linnaeus", "iob-tsv", dict(_TSV), "en", "linnaeus"),
    CorpusSpec("s800", "s800", "iob-tsv", dict(_TSV), "en", "s800",
               options={"bare_type": "Species"}),
    CorpusSpec("genia", "genia", "genia-jsonl",
               {"train": "train.jsonl", "dev": "dev.jsonl", "test": "test.jsonl"}, "en", "genia",
               nested=True),
    CorpusSpec("cmeee", "cmeee", "cmeee-json", {"train": "train_nested.json", "test": "test.json"},
               "zh", "cmeee", unit="records", nested=True),
    CorpusSpec("cmeee-flat", "cmeee", "char-bio", {"train": "train_flat.bio"}, "zh", "cmeee",
               nested=True),
    CorpusSpec("cmedqaner", "cmedqaner", "chineseblue-jsonl",
               {"train": "train.jsonl", "dev": "dev.jsonl", "test": "test.jsonl"}, "zh",
               "cmedqaner", unit="records", nested=True),
    CorpusSpec("cehrner", "cehrner", "chineseblue-jsonl",
               {"train": "train.jsonl", "dev": "dev.jsonl", "test": "test.jsonl"}, "zh", "cehrner",
               unit="records"),
    CorpusSpec("conll2003", "conll2003", "conll",
               {"train": "train.conll", "dev": "dev.conll", "test": "test.conll"}, "en",
               "conll2003"),
] + [CorpusSpec(n, f"extra/{n}", "iob-tsv", dict(_TSV), "en", n, extra=True) for n in _EXTRA] + [
    # English clinical corpora (brat); only the types of LABEL_MAP are read (docs/clinical_types.md)
    CorpusSpec(n, f"extra/{n}", "brat", {"train": "train", "dev": "dev", "test": "test"}, "en", n,
               unit="documents", nested=True, options={"only_mapped": True}, extra=True)
    for n in CLINICAL]}


def default_data_dir() -> Path:
    """BIOTAG_DATA_DIR, else ``<repo>/../shared/data`` (a source checkout)."""
    env = os.environ.get("BIOTAG_DATA_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


def resolve_data_dir(data_dir=None) -> Path:
    p = Path(data_dir) if data_dir is not None else default_data_dir()
    if not p.is_dir():
        raise InputError(f"data folder {p} does not exist (pass --data-dir or set BIOTAG_DATA_DIR)")
    return p


def get_corpus(name: str) -> CorpusSpec:
    key = name[len("extra/"):] if name.startswith("extra/") else name
    if key not in CORPORA:
        raise InputError(f"unknown corpus {name!r} (known: {', '.join(CORPORA)})")
    return CORPORA[key]


def iter_corpora(data_dir=None, names: Iterable[str] | None = None,
                 include_extra: bool = True) -> Iterator[CorpusSpec]:
    """Registered corpora (or those named). With ``data_dir``, IOB TSV folders under ``extra/``
    that the registry does not know are added as well (types passed through)."""
    if names:
        for n in names:
            yield get_corpus(n)
        return
    for spec in CORPORA.values():
        if include_extra or not spec.extra:
            yield spec
    if data_dir is not None and include_extra:
        extra = Path(data_dir) / "extra"
        if extra.is_dir():
            for d in sorted(extra.iterdir()):
                if d.is_dir() and d.name not in CORPORA:
                    splits = {f.stem: f.name for f in sorted(d.glob("*.tsv"))}
                    if splits:
                        yield CorpusSpec(d.name, f"extra/{d.name}", "iob-tsv", splits, "en",
                                         d.name, extra=True)


def iter_documents(name: str, split: str, data_dir=None,
                   report: ReadReport | None = None) -> Iterator[Document]:
    return get_corpus(name).read(split, data_dir, report)


def load(name: str, split: str, data_dir=None, report: ReadReport | None = None) -> list[Document]:
    """All Documents of one corpus split (see CORPORA for names and splits)."""
    return list(iter_documents(name, split, data_dir, report))


def read_file(path, format: str, *, corpus: str = "corpus", split: str = "",
              label_key: str | None = None, lang: str | None = None,
              report: ReadReport | None = None, **options) -> Iterator[Document]:
    """Read any file or folder in one of FORMATS."""
    if format not in FORMATS:
        raise InputError(f"unknown corpus format {format!r} (known: {', '.join(FORMATS)})")
    if lang is None:
        lang = "zh" if format in ("char-bio", "cmeee-json", "chineseblue-jsonl") else "en"
    return FORMATS[format](path, corpus=corpus, split=split, label_key=label_key, lang=lang,
                           report=report, **options)
