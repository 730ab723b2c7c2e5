"""Checks that the official `openai` Python client works unchanged against `isl serve`:
chat, streamed chat, completions, models, an error. Prints what it got; exits 1 on a mismatch.

    python3 -m pip install openai && python3 bench/openai_client_check.py http://127.0.0.1:8080
"""
import sys

import openai

base = (sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080").rstrip("/") + "/v1"
client = openai.OpenAI(base_url=base, api_key="unused")
models = [m.id for m in client.models.list()]
print("models:", models)
chat = client.chat.completions.create(model=models[0], messages=[{"role": "user", "content": "What is the capital of France?"}],
                                      temperature=0, max_tokens=24)
print("chat:", repr(chat.choices[0].message.content), chat.choices[0].finish_reason, chat.usage)
parts = []
for chunk in client.chat.completions.create(model=models[0], messages=[{"role": "user", "content": "What is the capital of France?"}],
                                            temperature=0, max_tokens=24, stream=True):
    if chunk.choices and chunk.choices[0].delta.content:
        parts.append(chunk.choices[0].delta.content)
print("stream:", repr("".join(parts)))
assert "".join(parts) == chat.choices[0].message.content, "the stream differs from the whole answer"
comp = client.completions.create(model=models[0], prompt="The sky is", max_tokens=8, temperature=0, logprobs=2)
print("completion:", repr(comp.choices[0].text), comp.choices[0].logprobs.tokens)
try:
    client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    raise SystemExit("an unknown model was accepted")
except openai.NotFoundError as e:
    print("unknown model:", e.status_code, e.body["code"] if isinstance(e.body, dict) else e.body)
try:
    client.chat.completions.create(model=models[0], messages=[{"role": "user", "content": "hi"}], temperature=5)
    raise SystemExit("temperature 5 was accepted")
except openai.BadRequestError as e:
    print("bad temperature:", e.status_code)
print("ok")
