// Greedy continuation of a prompt by llama.cpp, as token ids: a cross-check
// of the engine on generated models (bench/engine.sh does not need it).
// usage: node greedy.mjs MODEL.gguf PROMPT [N]
import {getLlama} from "node-llama-cpp";

const [path, prompt, nArg] = process.argv.slice(2);
const n = Number(nArg ?? 32);
const llama = await getLlama({gpu: false, build: "never"});
const model = await llama.loadModel({modelPath: path});
const ctx = await model.createContext({contextSize: 512, threads: 1, flashAttention: true});
const seq = ctx.getSequence();
const tokens = model.tokenize(prompt);
if (model.tokens.bos !== null)
    tokens.unshift(model.tokens.bos);
const out = [];
for await (const t of seq.evaluate(tokens, {temperature: 0})) {
    out.push(t);
    if (out.length >= n || model.isEogToken(t))
        break;
}
console.log(tokens.join(" "));
console.log(out.join(" "));
await llama.dispose();
