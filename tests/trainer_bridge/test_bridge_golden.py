"""Golden token sequences, written out by hand from VILA's code (NVlabs/VILA):

- VILA-1.5 (commit fcd119c): ``LazyMMC4Dataset`` / ``LazyCoyoDataset`` in
  ``llava/data/dataset.py``, ``tokenizer_image_token`` in ``llava/mm_utils.py`` (every
  piece between ``<image>`` markers tokenized with special tokens, BOS kept once, -200
  between pieces), ``DataCollatorForSupervisedDataset`` (pad, cut to
  model_max_length, keep as many images as image tokens survive), ``conv_vicuna_v1``,
  ``hermes_2`` and ``llama_3_chat`` in ``llava/conversation.py``.
- NVILA (current head): ``<image>\\n`` before each sentence, ``<image>`` a real token,
  BOS prepended to documents, ``preprocess_conversation`` (sentinel labels).

Expected ids are literals of the tiny vocabularies in ``golden_tokenizers``.
"""

from __future__ import annotations

import json

import pytest
import torch
from bridge_builder import color, jpeg
from golden_tokenizers import MEDIA, L, ids, llama_tokenizer, word_tokenizer

from trainer_bridge import Collator, SftEncoder, VilaPretrain
from trainer_bridge.images import DefaultProcessor

pytest.importorskip("transformers")
IMG, X = -200, -100


def raw_doc(texts, matched, bad=(), source="mmc4", key="k"):
    images, raw = [], {"__key__": key, "__url__": "u"}
    for j, m in enumerate(matched):
        images.append({"url": f"http://x/{j}", "member": f"{j}.jpg",
                       "matched_text_index": m, "status": "ok"})
        raw[f"{j}.jpg"] = b"not a jpeg" if j in bad else jpeg(color(0, j), (8 + j, 8))
    images.insert(1, {"url": "http://x/d", "member": None, "status": "http_404",
                      "matched_text_index": 1})
    raw["json"] = json.dumps({"texts": texts, "images": images, "source": source}).encode()
    return raw


DOC = (["one.", "two <image> here.", "three."], [2, 0, 2])


def pretrain(tok, **kw):
    return VilaPretrain(tokenizer=tok, processor=DefaultProcessor(8), **kw)


def test_mmc4_vila1_bos_tokenizer():
    out = pretrain(word_tokenizer())(raw_doc(*DOC))
    assert out["text"] == "<image>one. two <IMAGE> here.<image><image>three.</s>"
    assert out["input_ids"] == ids("<s>", IMG, "one.", "two", "<IMAGE>", "here.", IMG, IMG,
                                   "three.", "</s>")
    assert out["labels"] == ids("<s>", X, "one.", "two", "<IMAGE>", "here.", X, X,
                                "three.", "</s>")
    assert out["images"].shape[0] == 3


def test_mmc4_vila1_without_bos_and_nvila_adds_bos():
    tok = word_tokenizer(bos=False, media=True)
    vila1 = pretrain(tok, format="vila1")(raw_doc(*DOC))
    assert vila1["input_ids"] == ids(IMG, "one.", "two", "<IMAGE>", "here.", IMG, IMG,
                                     "three.", "</s>")
    nvila = pretrain(tok, format="nvila")(raw_doc(*DOC))
    assert nvila["text"] == ("<image>\none. two <IMAGE> here.<image>\n<image>\nthree.</s>")
    assert nvila["input_ids"] == ids("<s>", MEDIA, "one.", "two", "<IMAGE>", "here.", MEDIA,
                                     MEDIA, "three.", "</s>")
    assert nvila["labels"] == ids("<s>", X, "one.", "two", "<IMAGE>", "here.", X, X,
                                  "three.", "</s>")
    with pytest.raises(ValueError, match="add_tokens"):
        VilaPretrain(tokenizer=word_tokenizer(), format="nvila")


def test_image_order_follows_sentences():
    """np.argsort([2, 0, 2]) (stable for so few): images 1, 0, 2."""
    out = VilaPretrain(processor=DefaultProcessor(8))(raw_doc(*DOC))
    single = VilaPretrain(processor=DefaultProcessor(8))(raw_doc(["one."], [0, 0, 0]))
    assert torch.equal(out["images"], single["images"][[1, 0, 2]])


def test_pairs_one_sequence_each_and_collator_rows():
    tok = word_tokenizer()
    group = [raw_doc([f"cap {w}"], [0], source="coyo", key=f"p{w}") for w in "abcd"]
    out = pretrain(tok, kind="pairs")(group)
    assert [r["input_ids"] for r in out["rows"]] == [
        ids("<s>", IMG, "cap", w, "</s>") for w in "abcd"]
    assert [r["labels"] for r in out["rows"]] == [
        ids("<s>", X, "cap", w, "</s>") for w in "abcd"]
    out["__worker__"] = 1
    batch = Collator(tok.pad_token_id)([out])
    assert batch["input_ids"].tolist() == [ids("<s>", IMG, "cap", w, "</s>") for w in "abcd"]
    assert batch["num_images"].tolist() == [1, 1, 1, 1]
    assert batch["images"].shape == (4, 3, 8, 8) and batch["__worker__"] == [1]
    nv = pretrain(word_tokenizer(bos=False, media=True), kind="pairs", format="nvila")(group)
    assert [r["text"] for r in nv["rows"]][0] == "<image>\ncap a</s>"
    assert [r["input_ids"] for r in nv["rows"]] == [ids(MEDIA, "cap", w, "</s>")
                                                    for w in "abcd"]
    mixed = pretrain(tok, kind="pairs")(group[:3] + [raw_doc(["one."], [0], key="m")])
    assert len(mixed["rows"]) == 3 and mixed["skipped_pairs"] == 1  # an mmc4 doc


def test_truncation_in_the_collator_keeps_a_trailing_image():
    tok = word_tokenizer()
    sample = pretrain(tok)(raw_doc(*DOC))
    batch = Collator(tok.pad_token_id, model_max_length=7)([sample])
    assert batch["input_ids"].tolist() == [ids("<s>", IMG, "one.", "two", "<IMAGE>", "here.",
                                               IMG)]
    assert batch["num_images"].tolist() == [2] and batch["images"].shape[0] == 2
    assert torch.equal(batch["images"], sample["images"][:2])
    short = Collator(tok.pad_token_id, model_max_length=1)([sample])
    assert short["num_images"].tolist() == [0] and short["images"] is None


def test_undecodable_image_among_the_first_six_is_dropped_before_the_cap():
    tok = word_tokenizer()
    texts = ["one.", "two", "three."]
    raw = raw_doc(texts, [0, 1, 1, 2, 2, 2, 2, 2], bad=(1,))
    out = pretrain(tok)(raw)
    # the export leaves image 1 out; VILA then takes images 0, 2, 3, 4, 5, 6 (6 images)
    assert out["text"] == "<image>one.<image>two<image><image><image><image>three.</s>"
    assert out["input_ids"] == ids("<s>", IMG, "one.", IMG, "two", IMG, IMG, IMG, IMG,
                                   "three.", "</s>")
    assert out["images"].shape[0] == 6
    lone = pretrain(tok)(raw_doc(texts, [0, 1], bad=(0,)))
    assert lone["text"] == "one.<image>two three.</s>"  # no space lost around a dropped one
    assert lone["input_ids"] == ids("<s>", "one.", IMG, "two", "three.", "</s>")


VICUNA = ("▁A", "▁chat", "▁between", "▁a", "▁curious", "▁user", "▁and", "▁an",
          "▁artificial", "▁intelligence", "▁assistant", ".", "▁The", "▁assistant", "▁gives",
          "▁helpful", ",", "▁detailed", ",", "▁and", "▁polite", "▁answers", "▁to", "▁the",
          "▁user", "'", "s", "▁questions", ".")


def record(image=True, first="<image>\nhi"):
    rec = {"id": "r0", "conversations": [
        {"from": "human", "value": first}, {"from": "gpt", "value": "ok"},
        {"from": "human", "value": "hi"}, {"from": "gpt", "value": "yes"}]}
    if image:
        rec["image"] = "x.jpg"
    return rec


def test_sft_v1_llama_whole_prompt_no_extra_piece():
    tok = llama_tokenizer()
    got, labels, names = SftEncoder(tok, "v1").encode(record())
    want = (L("<s>", *VICUNA, "▁USER", ":", "▁") + [IMG]
            + L("▁", "\n", "hi", "▁ASSISTANT", ":", "▁ok", "</s>", "USER", ":", "▁hi",
                "▁ASSISTANT", ":", "▁yes", "</s>"))
    assert got == want and names == ["x.jpg"]
    trained = [(i, t) for i, t in enumerate(labels) if t != X]
    n = len(want)
    assert trained == [(n - 9, L("▁ok")[0]), (n - 8, L("</s>")[0]),
                       (n - 2, L("▁yes")[0]), (n - 1, L("</s>")[0])]
    text_only = SftEncoder(tok, "v1").encode(record(image=False, first="hi"))[0]
    assert text_only == L("<s>", *VICUNA, "▁USER", ":", "▁hi", "▁ASSISTANT", ":", "▁ok",
                          "</s>", "USER", ":", "▁hi", "▁ASSISTANT", ":", "▁yes", "</s>")


def test_sft_markers_normalised_as_vila_does():
    tok = llama_tokenizer()
    moved = SftEncoder(tok, "v1").encode(record(first="hi\n<image>"))[0]
    same = SftEncoder(tok, "v1").encode(record(first="hi<image>"))[0]
    # pieces around a marker are stripped, one ending without a newline gets a space:
    # both become "hi <image>"; the piece after it, " ASSISTANT...", keeps its one "▁"
    cut = L("<s>", *VICUNA, "▁USER", ":")
    assert moved == same
    assert moved[:len(cut) + 5] == cut + L("▁hi", "▁") + [IMG] + L("▁ASSISTANT", ":")
    none = SftEncoder(tok, "v1").encode(record(first="hi"))[0]  # marker added in front
    assert none[len(cut):len(cut) + 5] == L("▁") + [IMG] + L("▁", "\n", "hi")


def test_sft_hermes2_and_llama3_templates():
    tok = word_tokenizer()
    rec = {"image": "x.jpg", "conversations": [{"from": "human", "value": "<image>\nhi"},
                                               {"from": "gpt", "value": "ok"}]}
    got, labels, _ = SftEncoder(tok, "hermes-2").encode(rec)
    want = ids("<s>", "<|im_start|>", "system", "Answer", "the", "questions.", "<|im_end|>",
               "<|im_start|>", "user", IMG, "hi", "<|im_end|>", "<|im_start|>", "assistant",
               "ok", "<|im_end|>")
    # tokenizer_image_token: piece 2 ("\nhi<|im_end|>...") loses its BOS
    assert got == want
    assert [t for t in labels if t != X] == ids("ok", "<|im_end|>")
    got3, labels3, _ = SftEncoder(tok, "llama_3").encode(rec)
    from golden_tokenizers import LLAMA3_SYSTEM_TEXT
    sys_words = ids(*LLAMA3_SYSTEM_TEXT.split())
    assert got3 == (ids("<s>", "<|begin_of_text|>", "<|start_header_id|>", "system",
                        "<|end_header_id|>") + sys_words
                    + ids("<|eot_id|>", "<|start_header_id|>", "user", "<|end_header_id|>",
                          IMG, "hi", "<|eot_id|>", "<|start_header_id|>", "assistant",
                          "<|end_header_id|>", "ok", "<|end_of_text|>"))
    assert [t for t in labels3 if t != X] == ids("ok", "<|end_of_text|>")
    old, old_labels, _ = SftEncoder(tok, "llama_3_fcd119c").encode(rec)
    assert old[-12:] == ids("<|end_of_text|>", "<|start_header_id|>", "user",
                            "<|end_header_id|>", IMG, "hi", "<|end_of_text|>",
                            "<|start_header_id|>", "system", "<|end_header_id|>", "ok",
                            "<|end_of_text|>")
    assert [t for t in old_labels if t != X] == ids("ok", "<|end_of_text|>")


def test_sft_nvila_media_token_and_stripped_values():
    tok = word_tokenizer(bos=False, media=True)
    rec = {"image": ["x.jpg"], "conversations": [{"from": "human", "value": " hi<image> "},
                                                 {"from": "gpt", "value": " ok "}]}
    got, labels, _ = SftEncoder(tok, "hermes-2", format="nvila").encode(rec)
    # "hi<image>" -> "hi <image>" -> "hi <image>\n", then stripped: "hi <image>"; no BOS
    assert got == ids("<|im_start|>", "system", "Answer", "the", "questions.", "<|im_end|>",
                      "<|im_start|>", "user", "hi", MEDIA, "<|im_end|>", "<|im_start|>",
                      "assistant", "ok", "<|im_end|>")
    assert [t for t in labels if t != X] == ids("ok", "<|im_end|>")
    text_only = {"conversations": [{"from": "human", "value": "a <image> b"},
                                   {"from": "gpt", "value": "c"}]}
    assert MEDIA not in SftEncoder(tok, "hermes-2", format="nvila").encode(text_only)[0]
