// The official openai SDK as a real client of ballast. Prints one JSON object
// with what it saw; tests/integration/test_openai_sdk.py asserts on it.
import OpenAI from "openai";

const client = new OpenAI({
  baseURL: process.env.BALLAST_URL,
  apiKey: process.env.BALLAST_KEY || "unused",
  maxRetries: 0,
  timeout: 20000,
});
const model = process.env.BALLAST_MODEL || "gpt-4o-mini";
const out = {};

// non-streaming, with the raw response to read ballast's headers
const { data: chat, response } = await client.chat.completions
  .create({ model, messages: [{ role: "user", content: "hi" }], temperature: 0.2 })
  .withResponse();
out.chat = {
  content: chat.choices[0].message.content,
  finish_reason: chat.choices[0].finish_reason,
  usage: chat.usage,
  backend: response.headers.get("x-ballast-backend"),
  attempts: response.headers.get("x-ballast-attempts"),
  degraded: response.headers.get("x-ballast-degraded"),
  request_id: response.headers.get("x-request-id"),
};

// streaming
const stream = await client.chat.completions.create({
  model, stream: true, stream_options: { include_usage: true },
  messages: [{ role: "user", content: "hi" }],
});
let text = "", chunks = 0, finish = null, usage = null;
for await (const chunk of stream) {
  chunks++;
  if (chunk.usage) usage = chunk.usage;
  const c = chunk.choices?.[0];
  if (c?.delta?.content) text += c.delta.content;
  if (c?.finish_reason) finish = c.finish_reason;
}
out.stream = { text, chunks, finish_reason: finish, usage };

const comp = await client.completions.create({ model, prompt: "Once upon a time", max_tokens: 8 });
out.completion = { text: comp.choices[0].text };

const emb = await client.embeddings.create({ model, input: ["a", "b"] });
out.embeddings = { n: emb.data.length, dim: emb.data[0].embedding.length };

const models = await client.models.list();
out.models = models.data.map((m) => m.id);

try {
  await client.chat.completions.create({ model: "no-such-model", messages: [] });
  out.unknown_model = { status: 200 };
} catch (e) {
  out.unknown_model = { status: e.status, code: e.code, type: e.type };
}
console.log(JSON.stringify(out));
