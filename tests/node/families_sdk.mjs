// The official openai and @anthropic-ai/sdk SDKs as real clients of ballast,
// each speaking its own API family: chat completions, Responses and
// Anthropic Messages, streamed and not, with a tool round trip (the model
// asks for a tool, the client answers with its result, the model replies).
// Prints one JSON object; tests/integration/test_families.py asserts on it.
//
// env: BALLAST_URL (http://host:port), OPENAI_MODEL, ANTHROPIC_MODEL,
//      TOOLS=1 to run the tool round trips (a model that can call tools)
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";

const base = process.env.BALLAST_URL;
const oaModel = process.env.OPENAI_MODEL;
const anModel = process.env.ANTHROPIC_MODEL;
const tools = process.env.TOOLS === "1";
const openai = new OpenAI({ baseURL: base + "/v1", apiKey: "unused", maxRetries: 0, timeout: 30000 });
const anthropic = new Anthropic({ baseURL: base, apiKey: "unused", maxRetries: 0, timeout: 30000 });
const out = {};

const weatherParams = {
  type: "object",
  properties: { city: { type: "string" } },
  required: ["city"],
};

async function attempt(name, fn) {
  try {
    out[name] = await fn();
  } catch (e) {
    out[name] = { error: String(e), status: e.status, type: e.error?.error?.type ?? e.type };
  }
}

if (oaModel) {
  await attempt("chat", async () => {
    const { data, response } = await openai.chat.completions
      .create({ model: oaModel, messages: [{ role: "user", content: "hi" }], max_tokens: 24 })
      .withResponse();
    return {
      text: data.choices[0].message.content,
      finish: data.choices[0].finish_reason,
      usage: data.usage,
      backend: response.headers.get("x-ballast-backend"),
    };
  });
  await attempt("chat_stream", async () => {
    const s = await openai.chat.completions.create({
      model: oaModel, stream: true, stream_options: { include_usage: true }, max_tokens: 24,
      messages: [{ role: "user", content: "hi" }],
    });
    let text = "", finish = null, usage = null;
    for await (const c of s) {
      if (c.usage) usage = c.usage;
      text += c.choices?.[0]?.delta?.content ?? "";
      finish = c.choices?.[0]?.finish_reason ?? finish;
    }
    return { text, finish, usage };
  });
  await attempt("responses", async () => {
    const r = await openai.responses.create({ model: oaModel, input: "hi", instructions: "Be brief.",
                                              max_output_tokens: 24 });
    return { text: r.output_text, status: r.status, usage: r.usage, id: r.id };
  });
  await attempt("responses_stream", async () => {
    const s = await openai.responses.create({ model: oaModel, input: "hi", stream: true,
                                              max_output_tokens: 24 });
    let text = "", types = [], seq = [], final = null;
    for await (const e of s) {
      types.push(e.type);
      seq.push(e.sequence_number);
      if (e.type === "response.output_text.delta") text += e.delta;
      if (e.type === "response.completed" || e.type === "response.incomplete") final = e.response;
    }
    return { text, first: types[0], last: types[types.length - 1], seq_ok: seq.every((v, i) => v === i),
             final_text: final?.output?.[0]?.content?.[0]?.text ?? null };
  });
  if (tools) {
    await attempt("chat_tools", async () => {
      const t = [{ type: "function", function: { name: "get_weather", parameters: weatherParams } }];
      const messages = [{ role: "user", content: "Weather in Paris?" }];
      const r1 = await openai.chat.completions.create({ model: oaModel, messages, tools: t });
      const call = r1.choices[0].message.tool_calls?.[0];
      messages.push(r1.choices[0].message);
      messages.push({ role: "tool", tool_call_id: call.id, content: "sunny, 21C" });
      const s = await openai.chat.completions.create({ model: oaModel, messages, tools: t, stream: true });
      let text = "";
      for await (const c of s) text += c.choices?.[0]?.delta?.content ?? "";
      return { finish1: r1.choices[0].finish_reason, name: call.function.name,
               args: JSON.parse(call.function.arguments), id_ok: !!call.id, text };
    });
    await attempt("responses_tools", async () => {
      const t = [{ type: "function", name: "get_weather", parameters: weatherParams, strict: false }];
      const s = await openai.responses.create({ model: oaModel, input: "Weather in Paris?", tools: t,
                                                stream: true });
      let call = null, argDeltas = "";
      for await (const e of s) {
        if (e.type === "response.function_call_arguments.delta") argDeltas += e.delta;
        if (e.type === "response.output_item.done" && e.item.type === "function_call") call = e.item;
      }
      const r2 = await openai.responses.create({
        model: oaModel, tools: t,
        input: [{ role: "user", content: "Weather in Paris?" },
                { type: "function_call", call_id: call.call_id, name: call.name, arguments: call.arguments },
                { type: "function_call_output", call_id: call.call_id, output: "sunny, 21C" }],
      });
      return { name: call.name, args: JSON.parse(call.arguments), deltas_ok: argDeltas === call.arguments,
               text: r2.output_text };
    });
  }
}

if (anModel) {
  await attempt("messages", async () => {
    const { data, response } = await anthropic.messages
      .create({ model: anModel, max_tokens: 24, messages: [{ role: "user", content: "hi" }] })
      .withResponse();
    return { text: data.content.map((b) => b.text ?? "").join(""), stop: data.stop_reason,
             usage: data.usage, backend: response.headers.get("x-ballast-backend") };
  });
  await attempt("messages_stream", async () => {
    const s = anthropic.messages.stream({ model: anModel, max_tokens: 24, system: "Be brief.",
                                         messages: [{ role: "user", content: "hi" }] });
    let text = "";
    s.on("text", (t) => { text += t; });
    const m = await s.finalMessage();
    return { text, final_text: m.content.map((b) => b.text ?? "").join(""), stop: m.stop_reason,
             usage: m.usage };
  });
  await attempt("models", async () => {
    const page = await anthropic.models.list();
    return page.data.map((m) => m.id);
  });
  if (tools) {
    await attempt("messages_tools", async () => {
      const t = [{ name: "get_weather", description: "Weather now", input_schema: weatherParams }];
      const messages = [{ role: "user", content: "Weather in Paris?" }];
      const s = anthropic.messages.stream({ model: anModel, max_tokens: 200, messages, tools: t });
      const m1 = await s.finalMessage();
      const use = m1.content.find((b) => b.type === "tool_use");
      messages.push({ role: "assistant", content: m1.content });
      messages.push({ role: "user", content: [{ type: "tool_result", tool_use_id: use.id,
                                                content: "sunny, 21C" }] });
      const m2 = await anthropic.messages.create({ model: anModel, max_tokens: 200, messages, tools: t });
      return { stop1: m1.stop_reason, name: use.name, input: use.input, id_ok: !!use.id,
               text: m2.content.map((b) => b.text ?? "").join(""), stop2: m2.stop_reason };
    });
  }
}
console.log(JSON.stringify(out));
