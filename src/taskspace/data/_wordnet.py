"""A small reader of the WordNet 3.0 noun database (``data.noun``, ``index.noun``).

taskspace only needs the noun hypernym graph, so it reads the two documented files itself
(WordNet's ``wndb(5WN)`` format) instead of depending on NLTK, whose corpus reader also wants the
``lexnames`` file that Debian's ``wordnet-base`` does not ship. Synset names follow NLTK exactly:
``<first lemma, lowercased>.n.<sense number>``, the sense number being the synset's position in
``index.noun``'s list for that lemma (``dog.n.01``, ``footwear.n.01``).

A line of ``data.noun``::

    synset_offset lex_filenum ss_type w_cnt (word lex_id){w_cnt} p_cnt
        (pointer_symbol synset_offset pos source/target){p_cnt} | gloss

``w_cnt`` is two hexadecimal digits, ``p_cnt`` three decimal digits. Hypernyms are the pointers
``@`` (class) and ``@i`` (instance). A line of ``index.noun``::

    lemma pos synset_cnt p_cnt (ptr_symbol){p_cnt} sense_cnt tagsense_cnt
        (synset_offset){synset_cnt}
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ROOT = "/usr/share/wordnet"
ROOT_SYNSET = "entity.n.01"

_NAME = re.compile(r"^(?P<lemma>.+)\.n\.(?P<sense>\d+)$")
_WNID = re.compile(r"^n(?P<offset>\d{8})$")


@dataclass(frozen=True)
class Synset:
    """One noun synset of WordNet.

    Attributes
    ----------
    offset : int
        Byte offset of its line in ``data.noun``: WordNet 3.0's identifier of the synset.
    name : str
        NLTK-style name, ``dog.n.01``.
    lemmas : tuple of str
        Its words in database order (underscores for spaces, case as in the database).
    hypernyms : tuple of int
        Offsets of its hypernyms: class hypernyms (``@``) first, then instance hypernyms (``@i``),
        each in database order (NLTK's order).
    gloss : str
        Definition and examples.
    """

    offset: int
    name: str
    lemmas: tuple[str, ...]
    hypernyms: tuple[int, ...]
    gloss: str

    @property
    def wnid(self) -> str:
        """ImageNet-style WordNet id: ``'n'`` + the 8-digit offset (``n02084071``)."""
        return f"n{self.offset:08d}"


class WordNet:
    """The noun hierarchy of a WordNet 3.0 database directory.

    The files are parsed once, on first use (a second or two for the 15 MB ``data.noun``).

    Parameters
    ----------
    root : str or path-like, optional
        Directory holding ``data.noun`` and ``index.noun`` (Debian ``wordnet-base`` installs them in
        ``/usr/share/wordnet``; the upstream tarball has them under ``dict/``). Default:
        ``$WNSEARCHDIR`` if set, else ``/usr/share/wordnet``.
    """

    def __init__(self, root=None):
        root = root if root is not None else os.environ.get("WNSEARCHDIR", DEFAULT_ROOT)
        self.root = Path(root)
        missing = [f for f in ("data.noun", "index.noun") if not (self.root / f).is_file()]
        if missing:
            raise FileNotFoundError(
                f"no WordNet 3.0 database in {str(self.root)!r}: missing {', '.join(missing)}. "
                "Install it (Debian/Ubuntu: `apt install wordnet-base`) or pass the directory "
                "holding data.noun and index.noun"
            )
        self._lines: dict[int, str] | None = None
        self._senses: dict[str, tuple[int, ...]] | None = None
        self._cache: dict[int, Synset] = {}

    def __repr__(self) -> str:
        return f"WordNet(root={str(self.root)!r})"

    # -- parsing ----------------------------------------------------------------------------
    def _data_lines(self) -> dict[int, str]:
        if self._lines is None:
            lines = {}
            with open(self.root / "data.noun", encoding="utf-8") as f:
                for line in f:
                    if line.startswith("  "):  # the licence header
                        continue
                    offset = line[:8]
                    lines[int(offset)] = line
            self._lines = lines
        return self._lines

    def _sense_index(self) -> dict[str, tuple[int, ...]]:
        if self._senses is None:
            senses = {}
            with open(self.root / "index.noun", encoding="utf-8") as f:
                for line in f:
                    if line.startswith("  "):
                        continue
                    fields = line.split()
                    n_synsets = int(fields[2])
                    senses[fields[0]] = tuple(int(o) for o in fields[len(fields) - n_synsets :])
            self._senses = senses
        return self._senses

    def _parse(self, offset: int) -> Synset:
        synset = self._cache.get(offset)
        if synset is not None:
            return synset
        line = self._data_lines().get(offset)
        if line is None:
            raise KeyError(f"no noun synset at offset {offset:08d} in {self.root / 'data.noun'}")
        head, _, gloss = line.partition(" | ")
        fields = head.split()
        n_words = int(fields[3], 16)
        lemmas = tuple(fields[4 + 2 * i] for i in range(n_words))
        pos = 4 + 2 * n_words
        n_pointers = int(fields[pos])
        classes, instances = [], []
        for i in range(n_pointers):
            symbol, target, target_pos = fields[pos + 1 + 4 * i : pos + 4 + 4 * i]
            if target_pos == "n" and symbol == "@":
                classes.append(int(target))
            elif target_pos == "n" and symbol == "@i":
                instances.append(int(target))
        lemma = lemmas[0].lower()
        sense = self._sense_index()[lemma].index(offset) + 1
        synset = Synset(
            offset=offset,
            name=f"{lemma}.n.{sense:02d}",
            lemmas=lemmas,
            hypernyms=tuple(classes + instances),
            gloss=gloss.strip(),
        )
        self._cache[offset] = synset
        return synset

    # -- lookup -----------------------------------------------------------------------------
    def synset(self, key) -> Synset:
        """The synset named by ``key``.

        Parameters
        ----------
        key : str or int or Synset
            An NLTK-style name ``lemma.n.NN`` (any of the synset's lemmas, as NLTK accepts:
            ``domestic_dog.n.01`` is ``dog.n.01``), a wnid ``n02084071``, or an integer offset.
        """
        if isinstance(key, Synset):
            return key
        if isinstance(key, int):
            return self._parse(key)
        if not isinstance(key, str):
            raise TypeError(
                f"a synset is named by a str or an int offset, got {type(key).__name__}"
            )
        match = _WNID.match(key)
        if match:
            offset = int(match["offset"])
            if offset not in self._data_lines():
                raise KeyError(f"no noun synset with wnid {key!r} in WordNet ({self.root})")
            return self._parse(offset)
        match = _NAME.match(key)
        if not match:
            raise KeyError(
                f"{key!r} is neither a synset name like 'dog.n.01' nor a wnid like 'n02084071'"
            )
        lemma, sense = match["lemma"].lower(), int(match["sense"])
        offsets = self._sense_index().get(lemma)
        if offsets is None:
            raise KeyError(f"no noun {lemma!r} in WordNet ({self.root})")
        if not 1 <= sense <= len(offsets):
            raise KeyError(f"{lemma!r} has {len(offsets)} noun sense(s), not {sense} (in {key!r})")
        return self._parse(offsets[sense - 1])

    def synsets(self, lemma: str) -> list[Synset]:
        """The noun synsets of ``lemma`` in sense order (``synsets('dog')[0]`` is ``dog.n.01``)."""
        key = lemma.strip().lower().replace(" ", "_")
        return [self._parse(o) for o in self._sense_index().get(key, ())]

    def hypernyms(self, key) -> list[Synset]:
        """Direct hypernyms, class (``@``) then instance (``@i``)."""
        return [self._parse(o) for o in self.synset(key).hypernyms]

    def hypernym_paths(self, key) -> list[list[Synset]]:
        """Every path from the root ``entity.n.01`` down to the synset (both ends included).

        A synset with several hypernyms has several paths; they come in NLTK's order
        (``Synset.hypernym_paths``): depth first over the hypernyms in database order.
        """
        return [list(p) for p in self._paths(self.synset(key).offset)]

    @functools.cache  # noqa: B019 - one instance per database, kept for reuse
    def _paths(self, offset: int) -> tuple[tuple[Synset, ...], ...]:
        synset = self._parse(offset)
        if not synset.hypernyms:
            return ((synset,),)
        return tuple((*path, synset) for parent in synset.hypernyms for path in self._paths(parent))

    def __iter__(self):
        """Every noun synset, in file order."""
        return (self._parse(o) for o in self._data_lines())

    def __len__(self) -> int:
        return len(self._data_lines())


def open_wordnet(root=None) -> WordNet:
    """A shared `WordNet` per directory, so that the database is parsed once per process."""
    root = root if root is not None else os.environ.get("WNSEARCHDIR", DEFAULT_ROOT)
    return _open(Path(root).resolve())


@functools.lru_cache(maxsize=4)
def _open(root: Path) -> WordNet:
    return WordNet(root)
