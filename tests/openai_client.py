"""Drives docchat's /v1 API with the official OpenAI Python client.

Usage: python openai_client.py BASE_URL

The server must watch a folder holding tracemonkey.pdf and run with --max-queue 0
(one request at a time). Every check asserts; the figures seen are printed as one
JSON object on the last line for the calling test.
"""

import json
import math
import sys
import time

import openai
from openai import OpenAI

base = sys.argv[1].rstrip("/") + "/v1"
client = OpenAI(base_url=base, api_key="not-needed-on-loopback", max_retries=0, timeout=300)
seen = {"openai_version": openai.__version__}

# Models: the document model, the raw chat model, the embedding model.
models = {m.id: m for m in client.models.list().data}
assert "docchat" in models, models
kinds = {m.model_extra.get("kind"): m.id for m in models.values()}
chat_id, embed_id = kinds["chat"], kinds["embedding"]
seen["models"] = sorted(models)

QUESTION = "How does SpiderMonkey call C builtins through its foreign function interface (FFI)?"

# A document answer, not streamed: content, usage and citations to the page. It and
# the streamed one below process their whole prompt (cache_prompt false): greedy
# decoding repeats only on prompts batched the same way (see the seeded requests).
r = client.chat.completions.create(
    model="docchat",
    messages=[{"role": "user", "content": QUESTION}],
    max_tokens=48,
    temperature=0,
    extra_body={"cache_prompt": False},
)
choice = r.choices[0]
assert r.object == "chat.completion" and r.model == "docchat", r
assert choice.message.role == "assistant" and choice.message.content.strip(), r
assert choice.finish_reason in ("stop", "length"), choice.finish_reason
u = r.usage
assert u.prompt_tokens > 100, u  # the sources are in the prompt
assert 0 < u.completion_tokens <= 48, u
assert u.total_tokens == u.prompt_tokens + u.completion_tokens, u
citations = r.model_extra["citations"]
assert citations and all(c["path"] == "tracemonkey.pdf" for c in citations), citations
assert all(c["page_start"] >= 1 and c["url"].endswith(f"#page={c['page_start']}") for c in citations)
seen["rag_pages"] = sorted({c["page_start"] for c in citations})

# The same question streamed, with usage: chunks in order, citations on the last one.
stream = client.chat.completions.create(
    model="docchat",
    messages=[{"role": "user", "content": QUESTION}],
    max_tokens=48,
    temperature=0,
    stream=True,
    stream_options={"include_usage": True},
    extra_body={"cache_prompt": False},
)
pieces, finish, streamed_citations, usage = [], None, None, None
for chunk in stream:
    assert chunk.object == "chat.completion.chunk", chunk
    if chunk.usage is not None:
        usage = chunk.usage
        assert chunk.choices == [], chunk
        continue
    delta = chunk.choices[0].delta
    if delta.content:
        pieces.append(delta.content)
    if chunk.choices[0].finish_reason:
        finish = chunk.choices[0].finish_reason
        streamed_citations = chunk.model_extra.get("citations")
assert len(pieces) >= 2, pieces
assert finish in ("stop", "length"), finish
assert streamed_citations and streamed_citations[0]["path"] == "tracemonkey.pdf", streamed_citations
assert usage is not None and usage.completion_tokens > 0, usage
# Greedy decoding of the same prompt: the stream says what the plain response said.
assert "".join(pieces) == choice.message.content, ("".join(pieces), choice.message.content)
seen["stream_chunks"] = len(pieces)

# The fixed instruction that opens every document prompt stays in the model's KV
# cache: a different question right after reuses it (and only the prefix the two
# prompts share), instead of processing the whole prompt again.
other = client.chat.completions.create(
    model="docchat",
    messages=[{"role": "user", "content": "What is a trace tree, and when is one extended?"}],
    max_tokens=8,
    temperature=0,
)
cached = other.usage.prompt_tokens_details.cached_tokens
assert 30 <= cached < other.usage.prompt_tokens - 20, other.usage
seen["system_prompt_cached_tokens"] = cached

# A question nothing in the documents comes close to is not sent to the model:
# docchat says so, in a stated sentence, and names the nearest passages it looked at.
far = client.chat.completions.create(
    model="docchat",
    messages=[{"role": "user", "content": "What is the recommended adult dose of ibuprofen?"}],
    max_tokens=48,
)
text = far.choices[0].message.content
assert text.startswith("The documents do not seem to contain this"), text
assert "tracemonkey.pdf" in text, text
assert far.usage.completion_tokens == 0, far.usage
assert far.model_extra["citations"] and not any(c["cited"] for c in far.model_extra["citations"]), far.model_extra

# docchat's extra field limits the documents: a collection that does not exist
# leaves no sources.
r = client.chat.completions.create(
    model="docchat",
    messages=[{"role": "user", "content": QUESTION}],
    max_tokens=8,
    extra_body={"docchat": {"collections": ["no-such-collection"]}},
)
assert r.model_extra["citations"] == [], r.model_extra

# A follow-up: the earlier turns go with the question.
r = client.chat.completions.create(
    model="docchat",
    messages=[
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": "Through its FFI [1]."},
        {"role": "user", "content": "And which paper says so?"},
    ],
    max_tokens=16,
)
assert r.model_extra["citations"], r.model_extra

# The raw chat model: no retrieval, sampling with a seed is repeatable.
def raw(**kw):
    return client.chat.completions.create(
        model=chat_id,
        messages=[
            {"role": "system", "content": "You write short sentences."},
            {"role": "user", "content": "Describe the sea."},
        ],
        **kw,
    )

# The sampled text depends on how the prompt was batched (a batch of many tokens and
# one of a single token round differently), so repeatability is checked on requests
# batched the same way: after a first one, the same conversation takes all of its
# prompt but the last token from the cache, each time.
first = raw(max_tokens=12, temperature=0.9, top_p=0.95, seed=1234)
a = raw(max_tokens=12, temperature=0.9, top_p=0.95, seed=1234)
b = raw(max_tokens=12, temperature=0.9, top_p=0.95, seed=1234)
assert a.usage.prompt_tokens_details.cached_tokens == a.usage.prompt_tokens - 1, a.usage
assert b.usage.prompt_tokens_details.cached_tokens == b.usage.prompt_tokens - 1, b.usage
assert a.choices[0].message.content == b.choices[0].message.content, (a, b)
assert "citations" not in (a.model_extra or {}), a.model_extra
assert a.usage.completion_tokens <= 12, a.usage
long = raw(max_tokens=20, temperature=0.8, extra_body={"ignore_eos": True})
assert long.usage.completion_tokens == 20 and long.choices[0].finish_reason == "length", long
# An answer cut at max_tokens leaves its last token out of the model's cache: the
# next request on the same conversation must not see a stale cache. (It takes b's
# path: the prompt's cached part, then its last token; the sampled text depends on
# how the prompt was batched, so it is compared with a request batched the same way.)
again = raw(max_tokens=12, temperature=0.9, top_p=0.95, seed=1234)
assert again.usage.prompt_tokens_details.cached_tokens == b.usage.prompt_tokens_details.cached_tokens, again.usage
assert again.choices[0].message.content == b.choices[0].message.content, (again, b)
# llama-server's cache_prompt=false: the whole prompt is processed again, each time
# the same way, so a seeded answer repeats.
c = raw(max_tokens=12, temperature=0.9, top_p=0.95, seed=1234, extra_body={"cache_prompt": False})
d = raw(max_tokens=12, temperature=0.9, top_p=0.95, seed=1234, extra_body={"cache_prompt": False})
assert c.usage.prompt_tokens_details.cached_tokens == 0, c.usage
assert d.usage.prompt_tokens_details.cached_tokens == 0, d.usage
assert c.choices[0].message.content == d.choices[0].message.content, (c, d)
stopped = raw(max_tokens=40, temperature=0.8, seed=3, stop=[" ", "\n"], extra_body={"ignore_eos": True})
text = stopped.choices[0].message.content
assert " " not in text.strip() and "\n" not in text.strip(), repr(text)
assert stopped.choices[0].finish_reason == "stop", stopped
seen["raw_sample"] = a.choices[0].message.content

# Embeddings: one string or many, base64 (the client's default) or floats.
e = client.embeddings.create(model=embed_id, input="The cat sat on the mat.")
v = e.data[0].embedding
assert len(v) == models[embed_id].model_extra["dimensions"], len(v)
assert abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-3, "vectors are normalized"
f = client.embeddings.create(model=embed_id, input="The cat sat on the mat.", encoding_format="float")
assert max(abs(x - y) for x, y in zip(v, f.data[0].embedding)) < 1e-6
many = client.embeddings.create(
    model=embed_id,
    input=["A kitten rests on a rug.", "Quarterly tax filing deadlines.", "The cat sat on the mat."],
)
assert [d.index for d in many.data] == [0, 1, 2]
dot = lambda x, y: sum(p * q for p, q in zip(x, y))
near, far = dot(v, many.data[0].embedding), dot(v, many.data[1].embedding)
assert near > far + 0.2, (near, far)
assert max(abs(x - y) for x, y in zip(v, many.data[2].embedding)) < 1e-4, "batching changes nothing"
assert many.usage.prompt_tokens > 10, many.usage
seen["embedding_dim"] = len(v)
seen["cosine_near_far"] = [round(near, 3), round(far, 3)]

# Bad requests get OpenAI's error types.
def expect(exc_type, status, fn):
    try:
        fn()
    except exc_type as e:
        assert e.status_code == status, (e.status_code, e.body)
        return e
    raise AssertionError(f"expected {exc_type.__name__}")

e = expect(openai.NotFoundError, 404, lambda: client.chat.completions.create(
    model="gpt-9", messages=[{"role": "user", "content": "hi"}]))
assert e.code == "model_not_found" and e.param == "model", e.body
e = expect(openai.BadRequestError, 400, lambda: client.chat.completions.create(
    model=chat_id, messages=[{"role": "user", "content": "hi"}], temperature=5))
assert e.type == "invalid_request_error" and e.param == "temperature", e.body
e = expect(openai.BadRequestError, 400, lambda: client.chat.completions.create(model="docchat", messages=[]))
assert e.type == "invalid_request_error" and e.param == "messages", e.body
e = expect(openai.BadRequestError, 400, lambda: client.embeddings.create(model=embed_id, input=[]))
assert e.param == "input", e.body
e = expect(openai.BadRequestError, 400, lambda: client.chat.completions.create(
    model=chat_id, messages=[{"role": "user", "content": "word " * 6000}]))
assert e.code == "context_length_exceeded", e.body
seen["errors"] = "ok"

# One request at a time (--max-queue 0): a second one while a generation streams
# gets 503 with Retry-After; when the first client leaves, its place is free at once.
running = client.chat.completions.create(
    model=chat_id,
    messages=[{"role": "user", "content": "Tell a long story."}],
    max_tokens=1500,
    stream=True,
    extra_body={"ignore_eos": True},
)
first = next(iter(running))
assert first.choices[0].delta.role == "assistant"
e = expect(openai.InternalServerError, 503, lambda: raw(max_tokens=4))
assert e.code == "overloaded", e.body
retry_after = int(e.response.headers["retry-after"])
assert retry_after >= 1, retry_after
left_at = time.monotonic()
running.close()
while True:
    try:
        raw(max_tokens=4)
        break
    except openai.InternalServerError as e:
        assert e.status_code == 503, e.body
        assert time.monotonic() - left_at < 3, "the place of a client that left stays taken"
        time.sleep(0.05)
seen["freed_after_s"] = round(time.monotonic() - left_at, 3)
seen["retry_after_s"] = retry_after

print(json.dumps(seen))
