// llama.cpp as the oracle for bl_embed: for each case on stdin (a JSON array
// of {model, n_ctx, texts: [...]}), one JSON line per text with its tokens,
// the final hidden state (after the output norm) of each of its tokens, and
// what node-llama-cpp's getEmbeddingFor(text) itself returns.
//
// node-llama-cpp 3.22.1 has no pooling option: its embedding context takes
// the model's pooling type, and a generative llama/qwen file has none (NONE),
// so getEmbeddingFor gives the last token's hidden state, not normalised.
// With causal attention, token i's hidden state is the same whether the text
// stops there or goes on, so the hidden state of every token is the
// getEmbeddingFor of the prefix that ends with it; the test averages them as
// llama.cpp's MEAN pooling does and normalises as llama-server does.
import {getLlama} from "node-llama-cpp";
import {readFileSync} from "node:fs";

const cases = JSON.parse(readFileSync(0, "utf8"));
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
for (const c of cases) {
    const model = await llama.loadModel({modelPath: c.model});
    const ctx = await model.createEmbeddingContext({contextSize: c.n_ctx, threads: 1});
    const bos = model.tokens.shouldPrependBosToken ? model.tokens.bos : null;
    for (const text of c.texts) {
        // getEmbeddingFor's own tokenization: no special tokens, BOS per the model
        let tokens = model.tokenize(text, false);
        if (bos != null && tokens[0] !== bos)
            tokens = [bos, ...tokens];
        const hidden = [];
        for (let i = 1; i <= tokens.length; i++)
            hidden.push((await ctx.getEmbeddingFor(tokens.slice(0, i))).vector);
        const direct = (await ctx.getEmbeddingFor(text)).vector;
        console.log(JSON.stringify({model: c.model, text, tokens, hidden, direct,
                                    add_eos: model.tokens.shouldAppendEosToken}));
    }
    await ctx.dispose();
    await model.dispose();
}
await llama.dispose();
