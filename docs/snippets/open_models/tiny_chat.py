"""A chat model as transformers builds it: configuration, model, tokenizer, chat template, generation.

The model is a tiny Llama with random weights, built from a configuration in code, so nothing is
downloaded and its replies are gibberish; the tokenizer is GPT-2's, built from the course's copy
of its two files. With a real checkpoint, the same calls are
AutoTokenizer.from_pretrained(name) and AutoModelForCausalLM.from_pretrained(name, dtype=torch.bfloat16).
"""
from pathlib import Path

import torch
from tokenizers import ByteLevelBPETokenizer
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

gpt2_files = Path(__file__).resolve().parents[4] / "shared" / "data" / "gpt2"
bpe = ByteLevelBPETokenizer(str(gpt2_files / "gpt2_vocab.json"), str(gpt2_files / "gpt2_merges.txt"))
tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>")
# A chat template is a Jinja program, shipped with each chat model, that turns a list of messages
# into the exact text the model was fine-tuned on. This one is a made-up minimal format.
tokenizer.chat_template = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|endoftext|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

torch.manual_seed(0)
config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
model = LlamaForCausalLM(config).eval()
print(f"tiny Llama: {model.num_parameters():,} parameters, {config.num_hidden_layers} layers")

messages = [{"role": "system", "content": "You are a helpful tutor."},
            {"role": "user", "content": "What is a token?"}]
prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
print(repr(prompt))
inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)

# The sampling settings notebook 07's generate() implements (temperature, top-k), plus top-p
# (nucleus) and a repetition penalty.
settings = GenerationConfig(do_sample=True, temperature=0.8, top_k=50, top_p=0.95, repetition_penalty=1.1,
                            max_new_tokens=8, pad_token_id=tokenizer.eos_token_id)
output = model.generate(**inputs, generation_config=settings)
new_tokens = output[0, inputs["input_ids"].shape[1]:]
print(f"prompt {inputs['input_ids'].shape[1]} tokens, generated {len(new_tokens)} new tokens")
