// llama.cpp (prebuilt, via node-llama-cpp) on the same GGUF file, as the
// speed peer of `ballast bench-engine`: prefill of a fixed pseudo-random
// prompt, then greedy decode, printed as `key: value` lines.
// usage: node peer.mjs MODEL.gguf THREADS [PROMPT_TOKENS] [GEN_TOKENS]
import {getLlama} from "node-llama-cpp";

const [path, threadsArg, promptArg, genArg] = process.argv.slice(2);
if (!path || !threadsArg) {
    console.error("usage: node peer.mjs MODEL.gguf THREADS [PROMPT_TOKENS] [GEN_TOKENS]");
    process.exit(1);
}
const threads = Number(threadsArg), nPrompt = Number(promptArg ?? 128), nGen = Number(genArg ?? 128);

const llama = await getLlama({gpu: false, build: "never", maxThreads: threads});
let t0 = performance.now();
const model = await llama.loadModel({modelPath: path});
const loadMs = performance.now() - t0;
const ctx = await model.createContext({contextSize: nPrompt + nGen + 16, batchSize: nPrompt,
                                       threads: {ideal: threads, min: threads}});
const seq = ctx.getSequence();

// The same pseudo-random prompt as bench-engine (the text does not matter).
const vocab = model.fileInfo.metadata?.tokenizer?.ggml?.tokens?.length ?? 0;
if (!vocab) {
    console.error("peer.mjs: cannot read the vocabulary size");
    process.exit(1);
}
const prompt = [];
let x = 12345;
for (let i = 0; i < nPrompt; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    prompt.push((x >>> 8) % vocab);
}
if (model.tokens.bos !== null)
    prompt[0] = model.tokens.bos;

t0 = performance.now();
await seq.evaluateWithoutGeneratingNewTokens(prompt);
const prefillMs = performance.now() - t0;

// Decode: feed one token, take the greedy next one, nGen times.
let n = 0;
t0 = performance.now();
for await (const tok of seq.evaluate([prompt[nPrompt - 1]], {temperature: 0})) {
    void tok;
    if (++n >= nGen)
        break;
}
const decodeMs = performance.now() - t0;

console.log(`peer: llama.cpp via node-llama-cpp`);
console.log(`threads: ${threads}`);
console.log(`load_ms: ${loadMs.toFixed(1)}`);
console.log(`prefill_tok_s: ${(nPrompt * 1000 / prefillMs).toFixed(2)}`);
console.log(`decode_tok_s: ${(nGen * 1000 / decodeMs).toFixed(2)}`);
await ctx.dispose();
await model.dispose();
await llama.dispose();
