"""VILA-1.5's conversation templates (NVlabs/VILA ``llava/conversation.py``).

Only the prompt layout lives here; tokenization and labels are in ``sft``. Templates:

- ``v1`` / ``vicuna_v1`` (``SeparatorStyle.TWO``): ``SYSTEM USER: q ASSISTANT: a</s>``
  (VILA1.5-3B, -13B).
- ``llama_3`` (``LLAMA_3``, Llama-3-VILA1.5-8B as fixed in Aug 2024 and kept since):
  ``<|begin_of_text|>`` + system header, ``<|eot_id|>`` after each turn,
  ``<|end_of_text|>`` after the last.
- ``llama_3_fcd119c``: the same template at the VILA-1.5 release (commit fcd119c): the
  assistant header reads ``system`` and every turn ends with ``<|end_of_text|>``.
- ``hermes-2`` (``MPT``, VILA1.5-40B on Yi-34B): ``<|im_start|>role\\n...<|im_end|>``.
"""

from __future__ import annotations

from dataclasses import dataclass

VICUNA_SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. "
                 "The assistant gives helpful, detailed, and polite answers to the user's "
                 "questions.")
LLAMA3_SYSTEM = ("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a "
                 "helpful language and vision assistant. You are able to understand the "
                 "visual content that the user provides, and assist the user with a variety "
                 "of tasks using natural language.")
LLAMA3_USER = "<|start_header_id|>user<|end_header_id|>\n\n"


@dataclass(frozen=True)
class ChatTemplate:
    """A VILA ``Conversation`` reduced to what builds a training prompt."""

    name: str
    system: str
    roles: tuple[str, str]
    style: str  # "two" | "llama_3" | "mpt"
    sep: str
    sep2: str | None = None

    def prompt(self, turns: list[str]) -> str:
        """``turns`` alternate user, assistant, starting with the user (as VILA asserts)."""
        if self.style == "two":
            out = self.system + self.sep
            for i, msg in enumerate(turns):
                out += self.roles[i % 2] + ": " + msg + (self.sep, self.sep2)[i % 2]
            return out
        out = self.system + self.sep
        for i, msg in enumerate(turns):
            last = i == len(turns) - 1
            end = self.sep2 if (self.style == "llama_3" and last and self.sep2) else self.sep
            out += self.roles[i % 2] + msg + end
        return out


TEMPLATES = {
    "v1": ChatTemplate("v1", VICUNA_SYSTEM, ("USER", "ASSISTANT"), "two", " ", "</s>"),
    "llama_3": ChatTemplate(
        "llama_3", LLAMA3_SYSTEM,
        (LLAMA3_USER, "<|start_header_id|>assistant<|end_header_id|>\n\n"),
        "llama_3", "<|eot_id|>", "<|end_of_text|>"),
    "llama_3_fcd119c": ChatTemplate(
        "llama_3_fcd119c", LLAMA3_SYSTEM,
        (LLAMA3_USER, "<|start_header_id|>system<|end_header_id|>\n\n"),
        "llama_3", "<|end_of_text|>"),
    "hermes-2": ChatTemplate(
        "hermes-2", "<|im_start|>system\nAnswer the questions.",
        ("<|im_start|>user\n", "<|im_start|>assistant\n"), "mpt", "<|im_end|>"),
}
TEMPLATES["vicuna_v1"] = TEMPLATES["v1"]


def get_template(name: str | ChatTemplate) -> ChatTemplate:
    if isinstance(name, ChatTemplate):
        return name
    if name not in TEMPLATES:
        raise ValueError(f"template must be one of {sorted(TEMPLATES)}, not {name!r}")
    return TEMPLATES[name]
