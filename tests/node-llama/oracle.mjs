// llama.cpp as the oracle for the engine's architectures: for each case on
// stdin (a JSON array of {model, n_ctx, prompt: [ids], n_gen}), its greedy
// continuation and the logits before each generated token (after the prompt,
// then after each greedy token), as one JSON line per case. Token ids in,
// token ids out: no tokenizer is involved.
import {getLlama} from "node-llama-cpp";
import {readFileSync} from "node:fs";

const cases = JSON.parse(readFileSync(0, "utf8"));
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const next = {generateNext: {token: true, logits: true, options: {temperature: 0}}};
for (const c of cases) {
    const model = await llama.loadModel({modelPath: c.model});
    const ctx = await model.createContext({
        contextSize: c.n_ctx, threads: 1, flashAttention: true, batchSize: 512,
    });
    const seq = ctx.getSequence();
    let input = c.prompt.map((t, i) => i === c.prompt.length - 1 ? [t, next] : t);
    const greedy = [], logits = [];
    while (greedy.length < c.n_gen) {
        const res = await seq.controlledEvaluate(input);
        const out = res[input.length - 1].next;
        logits.push(Array.from({length: out.logits.size}, (_, i) => out.logits.get(i)));
        greedy.push(out.token);
        input = [[out.token, next]];
    }
    console.log(JSON.stringify({model: c.model, n_vocab: logits[0].length, greedy, logits}));
    await ctx.dispose();
    await model.dispose();
}
await llama.dispose();
