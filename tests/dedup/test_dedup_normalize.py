from __future__ import annotations

from curation.dedup.normalize import normalize_url, text_hash, url_hash, word_bytes, words


def test_words_fold_case_unicode_punctuation_and_space():
    assert words("Hello,  WORLD!\n\tＡＢＣ—it's") == ["hello", "world", "abc", "it", "s"]
    assert text_hash(words("Hello, world")) == text_hash(words("hello   WORLD."))
    assert text_hash(words("hello world")) != text_hash(words("world hello"))
    assert text_hash([]) is None


def test_url_normalization():
    same = ["http://www.Example.com/a/b/?utm_source=x&b=2&a=1#frag",
            "https://example.com:443/a/b?a=1&b=2", "HTTPS://EXAMPLE.COM/a/b?a=1&b=2&fbclid=z"]
    assert len({normalize_url(u) for u in same}) == 1
    assert normalize_url("https://example.com/a/B") != normalize_url("https://example.com/a/b")
    assert normalize_url("https://example.com:8080/") == "https://example.com:8080/"
    for bad in (None, "", "   ", "not a url", "http://[::1"):
        assert url_hash(bad) is None
    assert -(2**63) <= url_hash(same[0]) < 2**63


def test_word_bytes_is_words_in_utf8():
    samples = ["Café — “quoted” naïve…", "tab\there\x1cunit\x85nel", "ＡＢＣ１２３ ｶﾀｶﾅ",
               "snake_case keeps_underscores!", "日本語、テキスト。", "plain ascii, text."]
    for text in samples:
        assert [t.decode() for t in word_bytes(text)] == words(text)
        assert text_hash(word_bytes(text)) == text_hash(words(text))


def test_fold_texts_is_words_of_each_text():
    """Many texts in one buffer: each text's slice splits into its ``words``."""
    from curation.dedup.normalize import fold_texts

    samples = ["“Start” quoted", "plain ascii, text.", "", "naïve café—end…",
               "日本語、テキスト。", "tab\there\x1cunit\x85nel", "x’y"]
    buf, ends = fold_texts(samples)
    starts = [0, *ends[:-1].tolist()]
    for text, s, e in zip(samples, starts, ends.tolist()):
        assert [w.decode() for w in bytes(buf[s:e]).split()] == words(text)
