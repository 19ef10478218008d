"""Tool calling: the model is shown each tool's JSON schema, answers with a call, the program runs it,
and the result goes back into the conversation as a message with the role "tool".

transformers builds the schema from a typed, documented Python function; a chat template that
supports tools writes the schemas into the prompt (tokenizer.apply_chat_template(messages, tools=[...])).
"""
import json

from transformers.utils import get_json_schema


def parameter_count(hidden_size: int, layers: int) -> int:
    """The parameters of a GPT's Transformer blocks, about 12 per layer per hidden_size squared.

    Args:
        hidden_size: the model's width
        layers: the number of Transformer blocks
    """
    return 12 * layers * hidden_size**2


schema = get_json_schema(parameter_count)
print(json.dumps(schema["function"]["parameters"], indent=1))

# What a model fine-tuned for tools answers: a call, as JSON, instead of text.
reply = '{"name": "parameter_count", "arguments": {"hidden_size": 4096, "layers": 32}}'
call = json.loads(reply)
result = {"parameter_count": parameter_count}[call["name"]](**call["arguments"])
messages = [
    {"role": "user", "content": "How many parameters are in 32 blocks of width 4096?"},
    {"role": "assistant", "tool_calls": [{"type": "function", "function": call}]},
    {"role": "tool", "name": call["name"], "content": str(result)},
]
print(messages[-1])

# The Model Context Protocol moves the same exchange between programs: a client asks a server
# for its tools with "tools/list" and calls one with "tools/call", as JSON-RPC 2.0 messages.
print(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                  "params": {"name": call["name"], "arguments": call["arguments"]}}))
