"""The cases of the export fixtures (tests/fixtures/exports/make_exports.py writes them): each a builder of a tiny
adapters model in one shape `migrate --to transformers` exports, and what its export must be. Main test environment
only (adapters 1.3.0 on transformers 4.57)."""

from __future__ import annotations

from typing import Any

import torch

import adapters
from adapters import IA3Config, LoRAConfig, VeraConfig

from headcheck.migration.verify import CHOICES

from export_builders import SEED, _converted, _fresh, _seeded, _static  # tests/

LORA = dict(r=8, alpha=16)

# case -> (builder(work) -> (model, head name, adapter name or None), export expectations)
# A builder returns the model before _seeded (converted ones are seeded as static models, their adapters after).
CASES: dict[str, dict[str, Any]] = {}


def case(name: str, *, architecture: str, head_type: str, merged: bool = False, num_labels: int | None = None,
         problem_type: str | None = None, id2label: dict[int, str] | None = None, notes: str = ""):
    def register(build):
        CASES[name] = dict(build=build, architecture=architecture, head_type=head_type, merged=merged,
                           num_labels=num_labels, problem_type=problem_type, id2label=id2label, notes=notes)
        return build
    return register


SENTIMENT = {0: "negative", 1: "positive"}
TAGS = {0: "O", 1: "B-X", 2: "I-X"}
TOPICS = {0: "sport", 1: "politics", 2: "science"}


# --- heads: fresh (added with adapters' add_*_head defaults) and converted (from the static class) ----------------------

@case("bert-seqcls-fresh", architecture="BertForSequenceClassification", head_type="classification", num_labels=2,
      id2label=SENTIMENT,
      notes="adapters' default classification head (2 layers, tanh, CLS token, use_pooler false): layer 1 is the pooler")
def _(work):
    return _fresh("BertAdapterModel", "bert", lambda m: m.add_classification_head(
        "sentiment", num_labels=2, id2label=SENTIMENT)), "sentiment", None


@case("bert-seqcls-converted", architecture="BertForSequenceClassification", head_type="classification",
      num_labels=2, id2label=SENTIMENT,
      notes="BertForSequenceClassification loaded into BertAdapterModel (1 layer on the pooler)")
def _(work):
    return _converted("BertForSequenceClassification", "BertAdapterModel", work, id2label=SENTIMENT,
                      label2id={v: k for k, v in SENTIMENT.items()}), "default", None


@case("bert-regression", architecture="BertForSequenceClassification", head_type="classification", num_labels=1,
      problem_type="regression", notes="one output: mean squared error")
def _(work):
    return _fresh("BertAdapterModel", "bert", lambda m: m.add_classification_head("score", num_labels=1)), "score", None


@case("bert-multilabel", architecture="BertForSequenceClassification", head_type="multilabel_classification",
      num_labels=3, problem_type="multi_label_classification", id2label=TOPICS,
      notes="add_classification_head(multilabel=True): binary cross-entropy")
def _(work):
    return _fresh("BertAdapterModel", "bert", lambda m: m.add_classification_head(
        "topics", num_labels=3, multilabel=True, id2label=TOPICS)), "topics", None


@case("bert-tagging-fresh", architecture="BertForTokenClassification", head_type="tagging", num_labels=3,
      id2label=TAGS, notes="add_tagging_head: one layer (its config says tanh, which one layer never applies)")
def _(work):
    return _fresh("BertAdapterModel", "bert", lambda m: m.add_tagging_head("ner", num_labels=3, id2label=TAGS)), \
        "ner", None


@case("bert-tagging-converted", architecture="BertForTokenClassification", head_type="tagging", num_labels=3,
      id2label=TAGS, notes="BertForTokenClassification loaded into BertAdapterModel")
def _(work):
    return _converted("BertForTokenClassification", "BertAdapterModel", work, id2label=TAGS,
                      label2id={v: k for k, v in TAGS.items()}), "default", None


@case("bert-qa-fresh", architecture="BertForQuestionAnswering", head_type="question_answering", num_labels=2,
      notes="add_qa_head: one layer, start and end logits")
def _(work):
    return _fresh("BertAdapterModel", "bert", lambda m: m.add_qa_head("squad")), "squad", None


@case("bert-qa-converted", architecture="BertForQuestionAnswering", head_type="question_answering", num_labels=2,
      notes="BertForQuestionAnswering loaded into BertAdapterModel")
def _(work):
    return _converted("BertForQuestionAnswering", "BertAdapterModel", work), "default", None


@case("bert-multiple-choice-fresh", architecture="BertForMultipleChoice", head_type="multiple_choice",
      notes="adapters' default multiple-choice head (2 layers, tanh, use_pooler false): layer 1 is the pooler")
def _(work):
    return _fresh("BertAdapterModel", "bert", lambda m: m.add_multiple_choice_head("swag", num_choices=CHOICES)), \
        "swag", None


@case("bert-multiple-choice-converted", architecture="BertForMultipleChoice", head_type="multiple_choice",
      notes="BertForMultipleChoice (num_labels 3: adapters reads num_choices from the label map) loaded into "
            "BertAdapterModel")
def _(work):
    # adapters takes num_choices from the label map (2 entries unless the config says otherwise)
    return _converted("BertForMultipleChoice", "BertAdapterModel", work, num_labels=CHOICES), "default", None


@case("bert-mlm-fresh", architecture="BertForMaskedLM", head_type="masked_lm",
      notes="add_masked_lm_head: transform, LayerNorm, decoder tied to the word embeddings")
def _(work):
    return _fresh("BertAdapterModel", "bert", lambda m: m.add_masked_lm_head("mlm")), "mlm", None


@case("bert-mlm-converted", architecture="BertForMaskedLM", head_type="masked_lm",
      notes="BertForMaskedLM loaded into BertAdapterModel")
def _(work):
    return _converted("BertForMaskedLM", "BertAdapterModel", work), "default", None


@case("roberta-seqcls", architecture="RobertaForSequenceClassification", head_type="classification", num_labels=2,
      id2label=SENTIMENT,
      notes="the default head is RobertaClassificationHead (2 layers, tanh, first token)")
def _(work):
    return _fresh("RobertaAdapterModel", "roberta", lambda m: m.add_classification_head(
        "sentiment", num_labels=2, id2label=SENTIMENT)), "sentiment", None


@case("xlmr-seqcls", architecture="XLMRobertaForSequenceClassification", head_type="classification", num_labels=3,
      id2label=TOPICS, notes="three labels, the XLM-R default head (RobertaClassificationHead's layout)")
def _(work):
    return _fresh("XLMRobertaAdapterModel", "xlm-roberta", lambda m: m.add_classification_head(
        "topics", num_labels=3, id2label=TOPICS)), "topics", None


@case("gpt2-causal-lm", architecture="GPT2LMHeadModel", head_type="causal_lm",
      notes="GPT2LMHeadModel loaded into GPT2AdapterModel (lm_head tied to wte)")
def _(work):
    return _converted("GPT2LMHeadModel", "GPT2AdapterModel", work), "default", None


@case("distilbert-relu-classification", architecture="DistilBertForSequenceClassification",
      head_type="classification", num_labels=2, id2label=SENTIMENT,
      notes="add_classification_head(activation_function='relu'): pre_classifier, ReLU, classifier on the first token")
def _(work):
    return _fresh("DistilBertAdapterModel", "distilbert", lambda m: m.add_classification_head(
        "sentiment", num_labels=2, activation_function="relu", id2label=SENTIMENT)), "sentiment", None


@case("distilbert-tagging", architecture="DistilBertForTokenClassification", head_type="tagging", num_labels=3,
      id2label=TAGS, notes="add_tagging_head: one layer")
def _(work):
    return _fresh("DistilBertAdapterModel", "distilbert", lambda m: m.add_tagging_head(
        "ner", num_labels=3, id2label=TAGS)), "ner", None


@case("electra-gelu-classification", architecture="ElectraForSequenceClassification", head_type="classification",
      num_labels=3, id2label=TOPICS,
      notes="add_classification_head(activation_function='gelu'): ElectraClassificationHead's dense, GELU, out_proj")
def _(work):
    return _fresh("ElectraAdapterModel", "electra", lambda m: m.add_classification_head(
        "topics", num_labels=3, activation_function="gelu", id2label=TOPICS)), "topics", None


@case("bart-seqcls", architecture="BartForSequenceClassification", head_type="classification", num_labels=3,
      id2label=TOPICS, notes="adapters' default classification head on the last eos token: BartClassificationHead")
def _(work):
    return _fresh("BartAdapterModel", "bart", lambda m: m.add_classification_head(
        "topics", num_labels=3, id2label=TOPICS)), "topics", None


@case("bart-qa", architecture="BartForQuestionAnswering", head_type="question_answering", num_labels=2,
      notes="add_qa_head on the decoder output: one layer, start and end logits")
def _(work):
    return _fresh("BartAdapterModel", "bart", lambda m: m.add_qa_head("squad")), "squad", None


@case("bart-seq2seq-lm", architecture="BartForConditionalGeneration", head_type="seq2seq_lm",
      notes="BartForConditionalGeneration loaded into BartAdapterModel (lm_head tied, final_logits_bias zeros)")
def _(work):
    return _converted("BartForConditionalGeneration", "BartAdapterModel", work), "default", None


@case("t5-seq2seq-lm", architecture="T5ForConditionalGeneration", head_type="seq2seq_lm",
      notes="T5ForConditionalGeneration loaded into T5AdapterModel (transformer.* back to the static names)")
def _(work):
    return _converted("T5ForConditionalGeneration", "T5AdapterModel", work), "default", None


@case("t5-qa", architecture="T5ForQuestionAnswering", head_type="question_answering", num_labels=2,
      notes="add_qa_head with tied embeddings: T5AdapterModel's d_model**-0.5 folded into qa_outputs.weight")
def _(work):
    return _fresh("T5AdapterModel", "t5", lambda m: m.add_qa_head("squad")), "squad", None


@case("t5-seqcls", architecture="T5ForSequenceClassification", head_type="classification", num_labels=3,
      id2label=TOPICS, notes="adapters' default classification head on the last eos token of the decoder output, which "
                             "T5AdapterModel does not scale (tied embeddings): T5ClassificationHead, transformer.* kept")
def _(work):
    return _fresh("T5AdapterModel", "t5", lambda m: m.add_classification_head(
        "topics", num_labels=3, id2label=TOPICS)), "topics", None


@case("beit-image-classification", architecture="BeitForImageClassification", head_type="image_classification",
      num_labels=3, id2label=TOPICS, notes="add_image_classification_head(use_pooler=True): BEiT's mean pooler")
def _(work):
    return _fresh("BeitAdapterModel", "beit", lambda m: m.add_image_classification_head(
        "img", num_labels=3, use_pooler=True, id2label=TOPICS)), "img", None


@case("vit-image-classification", architecture="ViTForImageClassification", head_type="image_classification",
      num_labels=3, id2label=TOPICS, notes="ViTForImageClassification loaded into ViTAdapterModel")
def _(work):
    return _converted("ViTForImageClassification", "ViTAdapterModel", work, id2label=TOPICS,
                      label2id={v: k for k, v in TOPICS.items()}), "default", None


# --- adapters merged into the base weights --------------------------------------------------------------------------

@case("bert-lora-seqcls", architecture="BertForSequenceClassification", head_type="classification", merged=True,
      num_labels=2, id2label=SENTIMENT,
      notes="LoRA r=8 alpha=16 (scaling 2) on query/key/value, intermediate and output dense; default 2-layer head")
def _(work):
    model = _fresh("BertAdapterModel", "bert", lambda m: m.add_classification_head(
        "sentiment", num_labels=2, id2label=SENTIMENT))
    model.add_adapter("sentiment", LoRAConfig(**LORA, attn_matrices=["q", "k", "v"], intermediate_lora=True,
                                              output_lora=True))
    return model, "sentiment", "sentiment"


@case("gpt2-lora-causal-lm", architecture="GPT2LMHeadModel", head_type="causal_lm", merged=True,
      notes="LoRA r=8 alpha=16 on the fused c_attn, attn_matrices q and v (k's third untouched)")
def _(work):
    model = _converted("GPT2LMHeadModel", "GPT2AdapterModel", work)
    model.add_adapter("lm", LoRAConfig(**LORA, attn_matrices=["q", "v"]))
    return model, "default", "lm"


@case("llama-lora-causal-lm", architecture="LlamaForCausalLM", head_type="causal_lm", merged=True,
      notes="LoRA r=8 alpha=16 on q/k/v_proj, and the MLP: up_proj ('output') and down_proj ('intermediate'); "
            "adapters leaves gate_proj alone")
def _(work):
    model = _converted("LlamaForCausalLM", "LlamaAdapterModel", work)
    model.add_adapter("lm", LoRAConfig(**LORA, attn_matrices=["q", "k", "v"], intermediate_lora=True,
                                       output_lora=True))
    return model, "default", "lm"


@case("xlmr-lora-tagging", architecture="XLMRobertaForTokenClassification", head_type="tagging", merged=True,
      num_labels=3, id2label=TAGS, notes="LoRA r=8 alpha=16 on query/value and the output dense")
def _(work):
    model = _fresh("XLMRobertaAdapterModel", "xlm-roberta", lambda m: m.add_tagging_head(
        "ner", num_labels=3, id2label=TAGS))
    model.add_adapter("ner", LoRAConfig(**LORA, output_lora=True))
    return model, "ner", "ner"


@case("roberta-ia3-tagging", architecture="RobertaForTokenClassification", head_type="tagging", merged=True,
      num_labels=3, id2label=TAGS,
      notes="(IA)³ (adapters' IA3Config: key, value, intermediate; composition 'scale' scales weight and bias)")
def _(work):
    model = _fresh("RobertaAdapterModel", "roberta", lambda m: m.add_tagging_head("ner", num_labels=3, id2label=TAGS))
    model.add_adapter("ner", IA3Config())
    return model, "ner", "ner"


@case("bert-vera-seqcls", architecture="BertForSequenceClassification", head_type="classification", merged=True,
      num_labels=2, id2label=SENTIMENT,
      notes="VeRA r=8 alpha=16 on query/value: the shared frozen A and B (saved under bert.shared_parameters) and "
            "the trained vera_B / vera_D (filled off their diagonals), merged as b @ B @ d @ A; default 2-layer head")
def _(work):
    model = _fresh("BertAdapterModel", "bert", lambda m: m.add_classification_head(
        "sentiment", num_labels=2, id2label=SENTIMENT))
    model.add_adapter("sentiment", VeraConfig(**LORA, vera_b=0.3))
    return model, "sentiment", "sentiment"


@case("deberta-lora-seqcls", architecture="DebertaForSequenceClassification", head_type="classification",
      merged=True, num_labels=2, id2label=SENTIMENT,
      notes="LoRA r=8 alpha=16 on the fused in_proj, attn_matrices q and v (adapters' merged-linear grouping: k's "
            "third untouched), and intermediate; in_proj.bias (adapters' addition) zero, left out")
def _(work):
    model = _converted("DebertaForSequenceClassification", "DebertaAdapterModel", work, id2label=SENTIMENT,
                       label2id={v: k for k, v in SENTIMENT.items()})
    model.add_adapter("sentiment", LoRAConfig(**LORA, attn_matrices=["q", "v"], intermediate_lora=True))
    return model, "default", "sentiment"


@case("deberta-ia3-tagging", architecture="DebertaForTokenClassification", head_type="tagging", merged=True,
      num_labels=3, id2label=TAGS,
      notes="(IA)³ (IA3Config: k and v blocks of the fused in_proj, intermediate) scaling weight rows; the zero "
            "in_proj.bias left out")
def _(work):
    model = _converted("DebertaForTokenClassification", "DebertaAdapterModel", work, id2label=TAGS,
                       label2id={v: k for k, v in TAGS.items()})
    model.add_adapter("ner", IA3Config())
    return model, "default", "ner"


@case("distilbert-lora-tagging", architecture="DistilBertForTokenClassification", head_type="tagging", merged=True,
      num_labels=3, id2label=TAGS, notes="LoRA r=8 alpha=16 on q_lin/k_lin/v_lin and the FFN (lin1, lin2)")
def _(work):
    model = _fresh("DistilBertAdapterModel", "distilbert", lambda m: m.add_tagging_head(
        "ner", num_labels=3, id2label=TAGS))
    model.add_adapter("ner", LoRAConfig(**LORA, attn_matrices=["q", "k", "v"], intermediate_lora=True,
                                        output_lora=True))
    return model, "ner", "ner"


@case("electra-lora-seqcls", architecture="ElectraForSequenceClassification", head_type="classification",
      merged=True, num_labels=3, id2label=TOPICS,
      notes="LoRA r=8 alpha=16 on query/value and intermediate (BERT's layer names); GELU head")
def _(work):
    model = _fresh("ElectraAdapterModel", "electra", lambda m: m.add_classification_head(
        "topics", num_labels=3, activation_function="gelu", id2label=TOPICS))
    model.add_adapter("topics", LoRAConfig(**LORA, intermediate_lora=True))
    return model, "topics", "topics"


@case("bart-lora-seq2seq-lm", architecture="BartForConditionalGeneration", head_type="seq2seq_lm", merged=True,
      notes="LoRA r=8 alpha=16 on q_proj/v_proj (encoder, decoder self- and cross-attention) and fc1/fc2")
def _(work):
    model = _converted("BartForConditionalGeneration", "BartAdapterModel", work)
    model.add_adapter("gen", LoRAConfig(**LORA, intermediate_lora=True, output_lora=True))
    return model, "default", "gen"


@case("t5-lora-seq2seq-lm", architecture="T5ForConditionalGeneration", head_type="seq2seq_lm", merged=True,
      notes="LoRA r=8 alpha=16 on q/k/v (bias-free) and the FFN (wi, wo); merged tensors renamed from transformer.*")
def _(work):
    model = _converted("T5ForConditionalGeneration", "T5AdapterModel", work)
    model.add_adapter("gen", LoRAConfig(**LORA, attn_matrices=["q", "k", "v"], intermediate_lora=True,
                                        output_lora=True))
    return model, "default", "gen"


ADAPTER_FOLDER = "bert-lora-adapter"


@case(ADAPTER_FOLDER, architecture="BertForSequenceClassification", head_type="classification", merged=True,
      num_labels=2, id2label=SENTIMENT,
      notes="save_adapter(with_head=True) of a LoRA (r=8 alpha=16, query/value + intermediate) and its 2-layer "
            "classification head, trained on the plain BertModel in bert-lora-adapter.base/ (migrate --base)")
def _(work):
    """Only the adapter and its head are trained: the base stays as saved (seeded here, not by write_case)."""
    base = _seeded(_static("BertModel"))
    base.save_pretrained(work / "base")
    model = adapters.BertAdapterModel.from_pretrained(work / "base")
    model.config.name_or_path = f"{ADAPTER_FOLDER}.base"  # adapter_config.json's model_name: the folder beside it
    model.add_classification_head("sentiment", num_labels=2, id2label=SENTIMENT)
    model.add_adapter("sentiment", LoRAConfig(**LORA, intermediate_lora=True))
    gen = torch.Generator().manual_seed(SEED + 2)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".loras." in name or name.startswith("heads."):
                param.add_(torch.randn(param.shape, generator=gen) * 0.2)
    return model.eval(), "sentiment", "sentiment"
