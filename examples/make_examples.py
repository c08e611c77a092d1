"""Regenerate the example checkpoints shipped in examples/ (needs the `verify` extra: torch + transformers).

    python examples/make_examples.py
"""

from pathlib import Path

import torch
import transformers

HERE = Path(__file__).parent
TINY_BERT = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                 max_position_embeddings=64)
LABELS = ["toxic", "obscene", "threat", "insult"]


def main() -> None:
    torch.manual_seed(0)
    config = transformers.BertConfig(
        **TINY_BERT,
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
        problem_type="multi_label_classification",
    )
    transformers.BertForSequenceClassification(config).save_pretrained(HERE / "tiny-multilabel-bert")


if __name__ == "__main__":
    main()
