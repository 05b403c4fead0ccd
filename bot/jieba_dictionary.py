"""jieba's dictionary files: the trimmed dictionary the bot and ingest cut with, and its cache.

bot/textnorm.py's init_tokenizer loads jieba with them.
"""

from __future__ import annotations

import marshal
import os
import tempfile
from hashlib import md5
from pathlib import Path


# jieba's full dictionary (349k words) takes ~0.7 s to load even from its cache,
# a quarter of the bot's start-up budget. Words seen fewer than this many times
# in jieba's corpus are dropped (136k remain, ~0.2 s); the domain words are
# added back with a high frequency (bot/textnorm.py's init_tokenizer).
COMMON_WORD_MIN_FREQ = 5


def common_words_dictionary(cache_dir: Path) -> Path:
    """jieba's dictionary without its rarest words, written once into the data folder."""
    import jieba

    target = cache_dir / f"jieba-dict-freq{COMMON_WORD_MIN_FREQ}.txt"
    if target.exists():
        return target
    source = Path(jieba.__file__).with_name("dict.txt")
    kept = []
    with open(source, encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit() and int(parts[1]) >= COMMON_WORD_MIN_FREQ:
                kept.append(line if line.endswith("\n") else line + "\n")
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text("".join(kept), encoding="utf-8")
    os.replace(tmp, target)  # another process may be writing the same file
    return target


def load_fresh_cache(tokenizer) -> bool:
    """What jieba.initialize() does when its cache is fresh, reading the cache faster.

    jieba reads it with marshal.load on the open file, which makes one read call per
    string: ~0.3 s for the 180k-entry prefix dictionary, an eighth of the bot's start-up.
    marshal.loads on the file's bytes reads the same data in a third of that. Same file
    name and freshness rule as jieba 0.42's; False when there is no fresh cache (or it
    cannot be read), and jieba.initialize() then does it all as before."""
    dictionary = tokenizer.dictionary
    if tokenizer.initialized or tokenizer.cache_file or not dictionary:
        return tokenizer.initialized
    name = "jieba.u%s.cache" % md5(dictionary.encode("utf-8", "replace")).hexdigest()
    cache = os.path.join(tokenizer.tmp_dir or tempfile.gettempdir(), name)
    try:
        if os.path.getmtime(cache) <= os.path.getmtime(dictionary):
            return False
        with open(cache, "rb") as fh:
            tokenizer.FREQ, tokenizer.total = marshal.loads(fh.read())
    except (OSError, ValueError, EOFError, TypeError):
        return False
    tokenizer.initialized = True
    return True
