"""Stream curated shards into VILA-style training (torch + webdataset + fsspec + Pillow;
transformers optional, never imported here). See README "Trainer bridge"."""

from trainer_bridge.dataset import ResumableLoader, ShardDataset
from trainer_bridge.mixture import SftMixture
from trainer_bridge.sft import ImageFolder, SftSource, ShardImages, load_conversations
from trainer_bridge.token_ids import IGNORE_INDEX, VILA1_IMAGE_TOKEN_ID, Collator
from trainer_bridge.vila import VilaPretrain

__all__ = ["IGNORE_INDEX", "VILA1_IMAGE_TOKEN_ID", "Collator", "ImageFolder",
           "ResumableLoader", "SftMixture", "SftSource", "ShardDataset", "ShardImages",
           "VilaPretrain", "load_conversations"]
