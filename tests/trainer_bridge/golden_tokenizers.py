"""Tiny tokenizers built in the tests, so expected ids are literals of these vocabularies.

- ``word_tokenizer``: a Hugging Face fast tokenizer over a fixed word list (split on
  whitespace only), ``<s>`` prepended when ``bos=True`` (like LLaMA) or not (like Qwen),
  ``</s>`` and, for NVILA, ``<image>`` as special tokens.
- ``llama_tokenizer``: transformers' ``LlamaTokenizer`` (BPE with byte fallback and a
  ``▁`` prefix only at the very start, i.e. ``legacy=False``) over a small vocabulary
  whose pieces are listed in ``LLAMA_PIECES``: it shows the SentencePiece effects (a
  trailing space becomes its own ``▁`` token; no prefix after a special token).
"""

from __future__ import annotations

LLAMA3_SYSTEM_TEXT = ("You are a helpful language and vision assistant. You are able to "
                      "understand the visual content that the user provides, and assist the "
                      "user with a variety of tasks using natural language.")
WORDS = ["<pad>", "<unk>", "<s>", "</s>", "one.", "two", "<IMAGE>", "here.", "three.",
         "cap", "a", "b", "c", "d", "hi", "ok", "yes", "no", "USER:", "ASSISTANT:",
         "system", "user", "assistant", "Answer", "the", "questions."]
WORDS += [w for w in dict.fromkeys(LLAMA3_SYSTEM_TEXT.split()) if w not in WORDS]
SPECIAL = ["<|im_start|>", "<|im_end|>", "<|begin_of_text|>", "<|start_header_id|>",
           "<|end_header_id|>", "<|eot_id|>", "<|end_of_text|>"]
W = {w: i for i, w in enumerate(WORDS + SPECIAL)}
MEDIA = len(W)  # id of "<image>" once added (nvila)


def word_tokenizer(bos: bool = True, media: bool = False):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(vocab=dict(W), unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    if bos:
        tok.post_processor = TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 2)])
    out = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                  pad_token="<pad>", unk_token="<unk>")
    out.add_tokens(SPECIAL, special_tokens=True)
    assert out.convert_tokens_to_ids(SPECIAL[0]) == W[SPECIAL[0]]
    if media:
        out.add_tokens(["<image>"], special_tokens=True)
        assert out.convert_tokens_to_ids("<image>") == MEDIA
    return out


LLAMA_WORDS = ["▁", "\n", ":", ".", ",", "'", "s", "▁USER", "USER", "▁ASSISTANT", "▁hi",
               "▁ok", "▁yes", "▁A", "▁chat", "▁between", "▁a", "▁curious", "▁user", "▁and",
               "▁an", "▁artificial", "▁intelligence", "▁assistant", "▁The", "▁gives",
               "▁helpful", "▁detailed", "▁polite", "▁answers", "▁to", "▁the", "▁questions",
               "hi"]


def _llama_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    merges = []

    def add(piece: str) -> None:
        if piece not in vocab:
            vocab[piece] = len(vocab)

    for word in LLAMA_WORDS:
        for ch in word:
            add(ch)
        cur = word[0]
        for ch in word[1:]:
            if cur + ch not in vocab:
                add(cur + ch)
                merges.append((cur, ch))
            cur = cur + ch
    return vocab, merges


LLAMA_VOCAB, LLAMA_MERGES = _llama_vocab()


def llama_tokenizer():
    from transformers import LlamaTokenizer

    tok = LlamaTokenizer(vocab=dict(LLAMA_VOCAB), merges=list(LLAMA_MERGES),
                         add_bos_token=True, add_eos_token=False)
    tok.pad_token = tok.unk_token  # VILA-1.5: pad = unk
    return tok


def L(*pieces: str) -> list[int]:
    """Ids of pieces by the literal vocabulary above (an independent reference)."""
    return [LLAMA_VOCAB[p] for p in pieces]


def ids(*words: str | int) -> list[int]:
    return [w if isinstance(w, int) else W[w] for w in words]
