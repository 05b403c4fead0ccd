"""jieba's cache, read faster (bot/jieba_dictionary.py): the same prefix dictionary jieba reads."""

from __future__ import annotations

import os


def _tokenizer(cache_dir):
    import jieba

    from bot.jieba_dictionary import common_words_dictionary

    tokenizer = jieba.Tokenizer()
    tokenizer.tmp_dir = str(cache_dir)
    tokenizer.set_dictionary(str(common_words_dictionary(cache_dir)))
    return tokenizer


def test_a_fresh_cache_loads_what_jieba_loads(tmp_path):
    from bot.jieba_dictionary import load_fresh_cache

    assert not load_fresh_cache(_tokenizer(tmp_path))  # no cache yet: jieba builds it
    built = _tokenizer(tmp_path)
    built.initialize()  # writes the cache
    read_by_jieba = _tokenizer(tmp_path)
    read_by_jieba.initialize()
    fast = _tokenizer(tmp_path)
    assert load_fresh_cache(fast) and fast.initialized
    assert fast.total == read_by_jieba.total == built.total
    assert fast.FREQ == read_by_jieba.FREQ == built.FREQ
    assert fast.lcut("花呗逾期一个月会怎么催收") == read_by_jieba.lcut("花呗逾期一个月会怎么催收")


def test_a_stale_or_damaged_cache_is_left_to_jieba(tmp_path):
    from bot.jieba_dictionary import load_fresh_cache

    _tokenizer(tmp_path).initialize()
    (cache,) = tmp_path.glob("jieba.u*.cache")
    dictionary = next(tmp_path.glob("jieba-dict-*.txt"))
    # Older than the dictionary: jieba would rebuild it, so it is not read.
    os.utime(cache, (1, 1))
    assert not load_fresh_cache(_tokenizer(tmp_path))
    os.utime(cache, None)
    os.utime(dictionary, (1, 1))
    cache.write_bytes(b"not marshal data")
    damaged = _tokenizer(tmp_path)
    assert not load_fresh_cache(damaged) and not damaged.initialized
