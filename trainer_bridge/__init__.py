"""Stream curated shards into VILA-style training (torch + fsspec + Pillow;
transformers optional, never imported here). See README "Trainer bridge"."""

from trainer_bridge.dataset import ResumableLoader, ShardDataset
from trainer_bridge.formats import FORMATS, VILA1_IMAGE_TOKEN_ID
from trainer_bridge.images import TOWERS, ImageProcessor
from trainer_bridge.mixture import SftMixture, SftSource
from trainer_bridge.sft import ImageFolder, SftEncoder, load_conversations
from trainer_bridge.sft_shards import ShardConversations
from trainer_bridge.templates import TEMPLATES, ChatTemplate
from trainer_bridge.token_ids import IGNORE_INDEX, Collator
from trainer_bridge.vila import VilaPretrain

__all__ = ["FORMATS", "IGNORE_INDEX", "TEMPLATES", "TOWERS", "VILA1_IMAGE_TOKEN_ID",
           "ChatTemplate", "Collator", "ImageFolder", "ImageProcessor", "ResumableLoader",
           "SftEncoder", "SftMixture", "SftSource", "ShardConversations", "ShardDataset",
           "VilaPretrain", "load_conversations"]
