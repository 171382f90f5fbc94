"""The thin trainer over transformers + peft + trl (needs the ``train`` extra).

Tiny local model for demos and tests (no hub downloads)::

    medcurate model tiny --corpus NAME@VERSION --out DIR [--store STORE]

or from Python::

    from medcurate.train.tiny import build_tiny_model, build_tiny_model_from_dataset
    build_tiny_model(["病人咳嗽三天。", "建议多喝水。"], "models/tiny")      # any texts
    build_tiny_model_from_dataset("qa-demo@latest", "models/tiny", store="datasets")

The folder is a normal HF model (Llama architecture, hidden 64, 2 layers, random weights)
with a byte-level BPE tokenizer trained on the texts, ChatML special tokens and a chat
template with ``{% generation %}`` markers; load it with
``AutoTokenizer.from_pretrained(DIR)`` and ``AutoModelForCausalLM.from_pretrained(DIR)``
and sample with ``tokenizer.apply_chat_template(messages, add_generation_prompt=True)``.

Training: ``medcurate train sft|dpo|reward --recipe RECIPE --model PATH --data NAME@VERSION
--out RUN_DIR`` (see docs/training.md); the library entry point is
``medcurate.train.runner.run_training``.
"""
