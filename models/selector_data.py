"""Training data of the entity selector: (type, sentence, candidate span, label, group) examples
from gold documents, and the selector's WordPiece vocabulary extension for Chinese.

Positives are the gold spans. Negatives of a gold span (its *group*, for the contrastive term):

* ``shift``   one boundary moved by 1 or 2 words (start or end, in or out),
* ``extend``  both boundaries moved out by one word, ``shrink`` both moved in by one word,
* ``split``   the part before / after an inner word boundary,
* ``type``    the same span with another type of the same corpus,
* ``hard``    an LLM prediction on the sentence that is not gold and overlaps the span.

Sentence-level negatives (no group): ``random`` word spans with a type of the corpus, and the
``hard`` LLM predictions that overlap no gold span of their type. A negative never equals a gold
span of the sentence (same start, end and type); words are ``runtime.words.segment_words`` words
(every CJK character is a word). No torch here.
"""
from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from biotag.runtime.document import Document
from biotag.runtime.labels import corpus_types
from biotag.runtime.selector import MARK_CLOSE, MARK_OPEN
from biotag.runtime.words import Word, char_span_to_words, segment_words, snap_span_to_words

Key = tuple[int, int, str]
GROUP_KINDS = ("shift", "extend", "shrink", "split", "type", "hard")


@dataclass(frozen=True)
class SelExample:
    """One candidate to classify. ``start``/``end`` are offsets in ``text`` (the sentence)."""

    type: str
    text: str
    start: int
    end: int
    label: int
    group: int = -1      # index of the gold span (in its sentence) it derives from; -1: none
    kind: str = "gold"
    dataset: str = ""

    @property
    def key(self) -> Key:
        return (self.start, self.end, self.type)


@dataclass
class Sentence:
    dataset: str
    text: str
    golds: list[Key]
    types: tuple[str, ...]
    lang: str = "en"
    hard: list[Key] = field(default_factory=list)   # LLM predictions (may include gold ones)
    offset: int = 0                                 # start of the sentence in its document
    doc_text: str | None = field(default=None, repr=False, compare=False)
    _words: list[Word] | None = field(default=None, repr=False, compare=False)

    @property
    def words(self) -> list[Word]:
        if self._words is None:
            self._words = segment_words(self.text)
        return self._words


# --- sentences from documents ------------------------------------------------------------------
def document_sentences(doc: Document, dataset: str, types: Sequence[str] | None = None) -> list[Sentence]:
    """Sentences of a gold document (``sentence_spans``: no entity crosses a sentence), entity
    offsets made relative to the sentence."""
    from biotag.runtime.segment import sentence_spans

    types = tuple(types or corpus_types(dataset) or sorted({e.type for e in doc.entities}))
    out = []
    for a, b in sentence_spans(doc):
        golds = sorted({(e.start - a, e.end - a, e.type) for e in doc.entities
                        if a <= e.start and e.end <= b and e.type in types})
        out.append(Sentence(dataset, doc.text[a:b], golds, types, doc.lang or "en", offset=a, doc_text=doc.text))
    return out


def heldout(text: str, percent: float, salt: str = "selector-dev") -> bool:
    """Deterministic held-out membership of a text (used where a corpus has no dev split): the same
    text always falls on the same side, across sources and runs."""
    h = int(hashlib.sha1(f"{salt}\0{text}".encode("utf-8")).hexdigest()[:8], 16)
    return (h % 10000) < percent * 100


# --- negatives ---------------------------------------------------------------------------------
def word_range(words: list[Word], start: int, end: int) -> tuple[int, int] | None:
    return char_span_to_words(words, start, end) or snap_span_to_words(words, start, end)


def boundary_variants(n_words: int, i: int, j: int) -> list[tuple[int, int, str]]:
    """Word-index variants ``(a, b, kind)`` of the word span ``[i, j)`` in a sentence of
    ``n_words`` words; every variant is a valid non-empty span different from ``[i, j)``."""
    out: list[tuple[int, int, str]] = []
    for d in (-2, -1, 1, 2):
        out.append((i + d, j, "shift"))
        out.append((i, j + d, "shift"))
    out.append((i - 1, j + 1, "extend"))
    if j - i >= 3:
        out.append((i + 1, j - 1, "shrink"))
    for k in range(i + 1, j):
        out.append((i, k, "split"))
        out.append((k, j, "split"))
    seen, res = set(), []
    for a, b, kind in out:
        if 0 <= a < b <= n_words and (a, b) != (i, j) and (a, b) not in seen:
            seen.add((a, b))
            res.append((a, b, kind))
    return res


def group_negatives(sent: Sentence, g: int) -> list[tuple[Key, str]]:
    """All negatives derived from gold span ``sent.golds[g]``: boundary variants, wrong types and
    overlapping non-gold LLM predictions; never a gold key, no duplicates."""
    gold_keys = set(sent.golds)
    s, e, t = sent.golds[g]
    words = sent.words
    out: list[tuple[Key, str]] = []
    seen: set[Key] = set()

    def add(key: Key, kind: str) -> None:
        if key not in gold_keys and key not in seen and key[0] < key[1]:
            seen.add(key)
            out.append((key, kind))

    for (hs, he, ht) in sent.hard:     # first: an LLM error counts as "hard" even when it is
        if ht == t and hs < e and s < he:  # also a boundary variant
            add((hs, he, ht), "hard")
    wr = word_range(words, s, e)
    if wr is not None:
        for a, b, kind in boundary_variants(len(words), *wr):
            add((words[a].start, words[b - 1].end, t), kind)
    for t2 in sent.types:
        if t2 != t:
            add((s, e, t2), "type")
    return out


def random_negatives(sent: Sentence, rng: random.Random, n: int, max_words: int | None = None,
                     tries: int = 20) -> list[tuple[Key, str]]:
    """Up to ``n`` random word spans with a random type of the corpus, none a gold key."""
    words = sent.words
    if not words or not sent.types:
        return []
    if max_words is None:
        max_words = 6 if sent.lang == "zh" else 4
    gold_keys = set(sent.golds)
    out, seen = [], set()
    for _ in range(n * tries):
        if len(out) >= n:
            break
        i = rng.randrange(len(words))
        j = min(len(words), i + rng.randint(1, max_words))
        key = (words[i].start, words[j - 1].end, rng.choice(sent.types))
        if key not in gold_keys and key not in seen:
            seen.add(key)
            out.append((key, "random"))
    return out


def free_hard_negatives(sent: Sentence) -> list[tuple[Key, str]]:
    """LLM predictions that are not gold and overlap no gold span of their type."""
    gold_keys = set(sent.golds)
    out, seen = [], set()
    for key in sent.hard:
        if key in gold_keys or key in seen or key[0] >= key[1]:
            continue
        if any(gt == key[2] and gs < key[1] and key[0] < ge for gs, ge, gt in sent.golds):
            continue
        seen.add(key)
        out.append((key, "hard"))
    return out


def _ex(sent: Sentence, key: Key, label: int, group: int, kind: str) -> SelExample:
    return SelExample(key[2], sent.text, key[0], key[1], label, group, kind, sent.dataset)


def group_examples(sent: Sentence, g: int, rng: random.Random | None = None, n_neg: int | None = None,
                   group: int | None = None, kind_weights: dict[str, float] | None = None) -> list[SelExample]:
    """The gold span ``g`` and (a sample of ``n_neg`` of) its negatives, all with group id
    ``group`` (default ``g``). Sampling is stratified by kind (weights ``kind_weights``) so that
    cheap kinds (wrong types) do not crowd out boundary variants."""
    gid = g if group is None else group
    negs = group_negatives(sent, g)
    if n_neg is not None and rng is not None and len(negs) > n_neg:
        by_kind: dict[str, list] = {}
        for kn in negs:
            by_kind.setdefault(kn[1], []).append(kn)
        w = kind_weights or {}
        picked: list = []
        while len(picked) < n_neg:
            kinds = [k for k in sorted(by_kind) if by_kind[k]]
            k = rng.choices(kinds, weights=[w.get(x, 1.0) for x in kinds])[0]
            picked.append(by_kind[k].pop(rng.randrange(len(by_kind[k]))))
        negs = picked
    return [_ex(sent, sent.golds[g], 1, gid, "gold")] + [_ex(sent, k, 0, gid, kind) for k, kind in negs]


def sentence_examples(sent: Sentence, rng: random.Random | None = None, n_random: int = 2,
                      n_neg: int | None = None) -> list[SelExample]:
    """Every gold span of a sentence with its group negatives (all of them, or ``n_neg`` each),
    plus random and free hard negatives, each candidate once. Groups are the gold indices."""
    rng = rng or random.Random(0)
    out: list[SelExample] = []
    seen: set[Key] = set()
    for g in range(len(sent.golds)):
        for x in group_examples(sent, g, rng, n_neg):   # a variant shared by two golds: first one
            if x.key not in seen:
                seen.add(x.key)
                out.append(x)
    for key, kind in free_hard_negatives(sent) + random_negatives(sent, rng, n_random):
        if key not in seen:
            seen.add(key)
            out.append(_ex(sent, key, 0, -1, kind))
    return out


# --- hard negatives: LLM predictions on training sentences ---------------------------------------
def load_predictions(path: str | Path) -> dict[str, list[Key]]:
    """JSONL of predictions, one document a line (``{"text", "entities": [{start, end, type}]}``,
    the canonical format ``biotag tag`` writes) -> text -> predicted keys."""
    index: dict[str, list[Key]] = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            d = json.loads(line)
            keys = index.setdefault(d["text"], [])
            for e in d.get("entities") or []:
                keys.append((int(e["start"]), int(e["end"]), str(e["type"])))
    return index


def attach_predictions(sentences: Iterable[Sentence], index: dict[str, list[Key]]) -> Counter:
    """Give each sentence the predictions made on its text, or on the text of its whole document
    (offsets moved into the sentence); matched by exact text."""
    c: Counter = Counter()
    for s in sentences:
        keys = index.get(s.text)
        if keys is None and s.doc_text is not None and s.doc_text in index:
            a, b = s.offset, s.offset + len(s.text)
            keys = [(x - a, y - a, t) for x, y, t in index[s.doc_text] if a <= x and y <= b]
        if keys:
            s.hard = sorted(set(k for k in keys if k[2] in s.types and 0 <= k[0] < k[1] <= len(s.text)))
            c["sentences"] += 1
            c["predictions"] += len(s.hard)
            c["not_gold"] += sum(1 for k in s.hard if k not in set(s.golds))
    return c


# --- Chinese vocabulary ----------------------------------------------------------------------------
def unk_pieces(tokenizer, texts: Iterable[str]) -> Counter:
    """Pieces to add so that no word of ``texts`` becomes [UNK]: each character of an [UNK] word
    (``##``-prefixed when not word-initial) that the vocabulary lacks, with its count. ``tokenizer``
    is a ``tokenizers.Tokenizer`` with a WordPiece model (BERT normalizer and pre-tokenizer)."""
    vocab = tokenizer.get_vocab()
    unk = tokenizer.token_to_id("[UNK]")
    norm, pre = tokenizer.normalizer, tokenizer.pre_tokenizer
    cache: dict[str, bool] = {}
    cnt: Counter = Counter()
    for text in texts:
        t = norm.normalize_str(text) if norm is not None else text
        for w, _ in pre.pre_tokenize_str(t):
            bad = cache.get(w)
            if bad is None:
                bad = cache[w] = any(tk.id == unk for tk in tokenizer.model.tokenize(w))
            if bad:
                for i, ch in enumerate(w):
                    piece = ch if i == 0 else "##" + ch
                    if piece not in vocab:
                        cnt[piece] += 1
    return cnt


def extend_tokenizer(tokenizer, pieces: Sequence[str], markers: Sequence[str] = (MARK_OPEN, MARK_CLOSE)):
    """A copy of a WordPiece ``tokenizers.Tokenizer`` with ``pieces`` appended to its vocabulary
    (ids ``n, n+1, ...``, real WordPiece entries, so CJK characters split by the BERT
    pre-tokenizer map to them) and ``markers`` added as special tokens after them."""
    from tokenizers import AddedToken, Tokenizer

    d = json.loads(tokenizer.to_str())
    d["truncation"] = d["padding"] = None   # the runtime and training set these per call
    vocab = d["model"]["vocab"]
    n = max(max(vocab.values()), max((t["id"] for t in d.get("added_tokens", [])), default=-1)) + 1
    for p in pieces:
        if p not in vocab:
            vocab[p] = n
            n += 1
    tok = Tokenizer.from_str(json.dumps(d, ensure_ascii=False))
    tok.add_special_tokens([AddedToken(m, special=True, normalized=False, single_word=False,
                                       lstrip=False, rstrip=False) for m in markers])
    return tok


def unk_rate(tokenizer, texts: Iterable[str]) -> dict:
    """Share of [UNK] tokens over whole texts (no truncation)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(tokenizer.to_str())
    tokenizer.no_truncation()
    tokenizer.no_padding()
    unk = tokenizer.token_to_id("[UNK]")
    n = u = 0
    for t in texts:
        ids = tokenizer.encode(t, add_special_tokens=False).ids
        n += len(ids)
        u += sum(1 for i in ids if i == unk)
    return {"tokens": n, "unk": u, "rate": round(u / n, 6) if n else 0.0}
