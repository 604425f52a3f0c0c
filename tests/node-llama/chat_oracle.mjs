// Chat templates rendered by a real Jinja engine, as the oracle for ballast's
// built-in renderers (tests/engine/test_chat_oracle.c,
// tests/integration/test_chat_oracle.py). The engine is @huggingface/jinja,
// the one node-llama-cpp's JinjaTemplateChatWrapper runs (transformers'
// semantics: trim_blocks, lstrip_blocks, strftime_now).
//
// stdin: a JSON array of cases
//   {id, template | gguf, messages, tools, add_generation_prompt, continue_final,
//    bos, eos, strip_bos}
// - tools: OpenAI tool objects, given to the template as `tools` (left
//   undefined when absent, as templates test `tools is defined`);
// - gguf: read tokenizer.chat_template from that file (node-llama-cpp's
//   readGgufFileInfo) instead of taking `template`;
// - continue_final: leave the last (assistant) message open the way
//   transformers' continue_final_message does: render without a generation
//   prompt and cut right after the last occurrence of that message's text;
// - strip_bos: drop a leading BOS (the tokenizer adds it, as in llama.cpp).
// stdout: a JSON array of {id, text} or {id, error}.
import {Template} from "@huggingface/jinja";
import {readFileSync} from "node:fs";

const cases = JSON.parse(readFileSync(0, "utf8"));
const out = [];
for (const c of cases) {
    try {
        let tmpl = c.template;
        if (c.gguf) {
            const {readGgufFileInfo} = await import("node-llama-cpp");
            const info = await readGgufFileInfo(c.gguf, {readTensorInfo: false});
            tmpl = info.metadata?.tokenizer?.chat_template;
            if (typeof tmpl !== "string")
                throw new Error(`${c.gguf} has no tokenizer.chat_template`);
        }
        const ctx = {
            messages: c.messages,
            bos_token: c.bos ?? "<s>",
            eos_token: c.eos ?? "</s>",
            add_generation_prompt: !c.continue_final && !!c.add_generation_prompt,
        };
        if (c.tools !== undefined)
            ctx.tools = c.tools;
        let text = new Template(tmpl).render(ctx);
        if (c.continue_final) {
            const last = c.messages.at(-1).content.trim();
            const at = text.lastIndexOf(last);
            if (at < 0)
                throw new Error("the final message is not in the rendering");
            text = text.slice(0, at + last.length);
        }
        if (c.strip_bos && c.bos && text.startsWith(c.bos))
            text = text.slice(c.bos.length);
        out.push({id: c.id, text});
    } catch (e) {
        out.push({id: c.id, error: String(e?.message ?? e)});
    }
}
process.stdout.write(JSON.stringify(out));
