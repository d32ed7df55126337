"""Readers for the training corpora in their original formats, a registry of the corpora under
``shared/data``, and the ``biotag data`` command (statistics, word-boundary check, export).

Modules: ``registry`` (which corpus is where, ``load``), ``bio`` / ``standoff`` / ``jsonfmt``
(the readers), ``repairs`` (types, the read report, span repairs), ``reports`` (statistics and
checks) and ``cli`` (``biotag data``).

Every reader yields :class:`~biotag.runtime.document.Document` objects with exact code-point
offsets. The lines of BIO/CoNLL, PubTator and BRAT files are parsed by the lenient mode of the one
parser of each format (``biotag.runtime.formats.bio_tags``, ``.pubtator``, ``.brat``); the readers
here add the corpus policy: repairs, the read report, types, ids, texts and segments.
Token-based formats have no original text, so the text is *reconstructed*: tokens joined by single
spaces (Chinese character BIO: joined by nothing). Entity types are canonical (see
``labels.py`` and :data:`EXTRA_LABEL_MAP`); the corpus's own type is kept in
``entity.meta["orig_type"]``.

Units: one Document per sentence (IOB/BIO/CoNLL/GENIA), per record (CMeEE JSON, ChineseBLUE) or
per document (BRAT: one per ``.txt`` file, PubTator: one per abstract, text = title + " " +
abstract). For the two document formats ``doc.segments`` holds the *line* spans (BRAT: each
non-empty line, i.e. title and abstract; PubTator: title and abstract), not sentences.

Repairs (all counted in a :class:`ReadReport`, never silent):

* Offsets that do not match the mention text (ChineseBLUE, CMeEE, PubTator, BRAT): when only the
  letter case differs, the span is kept and the entity takes the text's characters
  (``meta["repair"] = "case"``, original in ``meta["mention"]``); when the mention occurs exactly
  once in the text, the entity is moved there (``"moved"``); otherwise it is dropped
  (``"ambiguous"`` / ``"not_found"``).
* BIO: an ``I-X`` after ``O`` or at the sentence start starts a mention (the usual lenient rule).
  An ``I-X`` right after a tag of another type also starts a mention in every IOB/CoNLL reader
  (the README counting rule). In the character BIO of ``cmeee/train_flat.bio`` these runs are the
  remains of nested entities whose inner tags were written over the outer ``sym`` span, so that
  reader repairs them (``continuation="extend"``): walking back over the directly adjacent
  top-level mentions, the run is *merged* into the first mention of its own type it meets
  (``B-sym I-sym B-bod I-bod I-sym`` -> one sym over all five characters, the bod nested inside), or,
  when it meets ``O`` or the sentence start first, *extended* back to the start of the adjacent
  chain (``B-bod I-bod I-sym`` -> sym over all three). Flattening the nested CMeEE JSON the same
  way and repairing it recovers 97.4 % of the resulting spans exactly (83.4 % without repair).
* BRAT is read by the lenient mode of :mod:`biotag.runtime.formats.brat` (the one brat parser):
  texts without newline translation (CRLF counts as two characters), relation, event, attribute,
  normalisation, equivalence and note lines skipped, stray lines taken as the continuation of the
  quote before them. Discontinuous entities (``T1\\ttype 0 5;10 15\\ttext``) keep their covering
  span with ``meta["discontinuous"] = True`` and ``meta["fragments"]``. A quote that differs only
  in letter case or was cut at a line break keeps its offsets (``"case"``, ``"quote_cut"``);
  whitespace at a span's ends is trimmed (``"trimmed"``).
* The clinical corpora (:data:`CLINICAL`: MACCROBAT2020, CHIA) yield only the types that
  ``labels.LABEL_MAP`` maps (``only_mapped``); the others are counted as ``type_left_out``.

Malformed input raises :class:`~biotag.runtime.errors.FormatError` naming ``file:line``; empty
files raise :class:`~biotag.runtime.errors.InputError`.
"""
from __future__ import annotations

from .bio import read_char_bio, read_conll, read_iob_tsv
from .cli import add_cli
from .jsonfmt import read_chineseblue_jsonl, read_cmeee_json, read_genia_jsonl
from .registry import (CLINICAL, CORPORA, FORMATS, CorpusSpec, default_data_dir, get_corpus, iter_corpora,
                       iter_documents, load, read_file, resolve_data_dir)
from .repairs import EXTRA_LABEL_MAP, ReadReport, canonical_type
from .reports import corpus_stats, doc_stats, word_boundary_report
from .standoff import mapped_types, read_brat, read_brat_document, read_pubtator

__all__ = [
    "ReadReport", "CorpusSpec", "CORPORA", "CLINICAL", "EXTRA_LABEL_MAP", "FORMATS", "canonical_type",
    "default_data_dir", "resolve_data_dir", "get_corpus", "iter_corpora", "iter_documents", "load", "read_file",
    "read_iob_tsv", "read_conll", "read_char_bio", "read_brat", "read_brat_document", "mapped_types",
    "read_genia_jsonl", "read_cmeee_json", "read_chineseblue_jsonl", "read_pubtator",
    "doc_stats", "corpus_stats", "word_boundary_report", "add_cli",
]
