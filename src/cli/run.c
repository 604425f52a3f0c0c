/*
 * `ballast run`: generate text with a local GGUF model, llama.cpp style.
 * Only the completion goes to stdout (flushed per piece); load time, seed and
 * speed go to stderr. Flags follow llama-cli's names.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <ballast/engine.h>

#include "cli/cli.h"

#define DEFAULT_N_PREDICT 128
#define DEFAULT_CTX 4096
#define MAX_STOPS 16

static const char USAGE[] =
    "usage: ballast run -m MODEL.gguf (-p PROMPT | -f FILE) [options]\n"
    "\n"
    "Generate a completion of PROMPT with a local model; the completion is\n"
    "streamed to stdout, diagnostics go to stderr.\n"
    "\n"
    "  -m, --model FILE          GGUF model file\n"
    "  -p, --prompt TEXT         prompt text\n"
    "  -f, --file FILE           read the prompt from FILE\n"
    "  -n, --n-predict N         tokens to generate (default 128; -1 = until end of\n"
    "                            text or the context is full)\n"
    "  -c, --ctx-size N          context length in tokens (default 4096, capped by the\n"
    "                            model's training context)\n"
    "  -t, --threads N           worker threads (default: online cores)\n"
    "  -r, --reverse-prompt S    stop when S is generated (repeatable; S is not printed)\n"
    "      --temp T              temperature; 0 = greedy (default 0.8)\n"
    "      --top-k N             (default 40; 0 = off)\n"
    "      --top-p P             (default 0.95; 1 = off)\n"
    "      --min-p P             (default 0.05; 0 = off)\n"
    "      --repeat-penalty F    (default 1.0 = off)\n"
    "      --repeat-last-n N     penalty window (default 64)\n"
    "      --presence-penalty F  (default 0)\n"
    "      --frequency-penalty F (default 0)\n"
    "      --seed N              RNG seed (default: random, printed to stderr)\n"
    "      --isa KIND            force kernels: scalar, avx2 or avx512 (testing)\n"
    "      --chat                the prompt is a user message: render it with the model's\n"
    "                            chat template and generate the assistant's answer\n"
    "      --system TEXT         with --chat: a system message before the prompt\n"
    "      --tools FILE          with --chat: tool definitions (a JSON array of OpenAI\n"
    "                            function tools) rendered into the prompt\n"
    "      --verbose-prompt      write the prompt as fed to the model (after the chat\n"
    "                            template) to stdout before the completion\n"
    "  -h, --help                this text\n";

static atomic_bool g_cancel;

static void on_sigint(int sig)
{
    (void)sig;
    atomic_store(&g_cancel, true);
}

static int put_text(void *ud, const char *text, size_t len)
{
    (void)ud;
    if (fwrite(text, 1, len, stdout) != len || fflush(stdout) != 0)
        return 1; /* stdout closed: stop generating */
    return 0;
}

static int parse_long(const char *flag, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "ballast run: %s expects an integer in [%ld, %ld], got '%s'\n", flag, lo,
                hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_float(const char *flag, const char *s, float lo, float hi, float *out)
{
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "ballast run: %s expects a number in [%g, %g], got '%s'\n", flag,
                (double)lo, (double)hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "ballast run: cannot open prompt file '%s': %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n == cap) {
            char *nb = cap > (64u << 20) ? NULL : realloc(buf, cap * 2);
            if (!nb) {
                fprintf(stderr, "ballast run: prompt file '%s' is too large\n", path);
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (k == 0)
            break;
    }
    if (buf && ferror(f)) {
        fprintf(stderr, "ballast run: cannot read '%s'\n", path);
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = n;
    return buf;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

enum {
    OPT_TEMP = 1000,
    OPT_TOP_K,
    OPT_TOP_P,
    OPT_MIN_P,
    OPT_REPEAT_PENALTY,
    OPT_REPEAT_LAST_N,
    OPT_PRESENCE,
    OPT_FREQUENCY,
    OPT_SEED,
    OPT_ISA,
    OPT_CHAT,
    OPT_SYSTEM,
    OPT_TOOLS,
    OPT_VERBOSE_PROMPT,
};

int bl_cli_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},
        {"prompt", required_argument, 0, 'p'},
        {"file", required_argument, 0, 'f'},
        {"n-predict", required_argument, 0, 'n'},
        {"ctx-size", required_argument, 0, 'c'},
        {"threads", required_argument, 0, 't'},
        {"reverse-prompt", required_argument, 0, 'r'},
        {"temp", required_argument, 0, OPT_TEMP},
        {"top-k", required_argument, 0, OPT_TOP_K},
        {"top-p", required_argument, 0, OPT_TOP_P},
        {"min-p", required_argument, 0, OPT_MIN_P},
        {"repeat-penalty", required_argument, 0, OPT_REPEAT_PENALTY},
        {"repeat-last-n", required_argument, 0, OPT_REPEAT_LAST_N},
        {"presence-penalty", required_argument, 0, OPT_PRESENCE},
        {"frequency-penalty", required_argument, 0, OPT_FREQUENCY},
        {"seed", required_argument, 0, OPT_SEED},
        {"isa", required_argument, 0, OPT_ISA},
        {"chat", no_argument, 0, OPT_CHAT},
        {"system", required_argument, 0, OPT_SYSTEM},
        {"tools", required_argument, 0, OPT_TOOLS},
        {"verbose-prompt", no_argument, 0, OPT_VERBOSE_PROMPT},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *model_path = NULL, *prompt_arg = NULL, *prompt_file = NULL;
    const char *stops[MAX_STOPS];
    size_t n_stop = 0;
    long n_predict = DEFAULT_N_PREDICT, n_ctx = 0, threads = 0, v = 0;
    bool have_seed = false, chat = false, verbose_prompt = false;
    const char *system_msg = NULL, *tools_file = NULL;
    bl_model_params_t mp;
    bl_model_params_default(&mp);
    bl_generate_params_t gp;
    bl_generate_params_default(&gp);
    bl_sampling_t *sp = &gp.sampling;

    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, ":m:p:f:n:c:t:r:h", opts, NULL)) != -1) {
        int bad = 0;
        switch (ch) {
        case 'm':
            model_path = optarg;
            break;
        case 'p':
            prompt_arg = optarg;
            break;
        case 'f':
            prompt_file = optarg;
            break;
        case 'n':
            bad = parse_long("-n", optarg, -1, 1L << 24, &n_predict);
            break;
        case 'c':
            bad = parse_long("-c", optarg, 0, 1L << 20, &n_ctx);
            break;
        case 't':
            bad = parse_long("-t", optarg, 0, 256, &threads);
            break;
        case 'r':
            if (n_stop == MAX_STOPS) {
                fprintf(stderr, "ballast run: at most %d reverse prompts\n", MAX_STOPS);
                return 1;
            }
            if (!*optarg) {
                fprintf(stderr, "ballast run: -r needs a non-empty string\n");
                return 1;
            }
            stops[n_stop++] = optarg;
            break;
        case OPT_TEMP:
            bad = parse_float("--temp", optarg, 0, 100, &sp->temperature);
            break;
        case OPT_TOP_K:
            bad = parse_long("--top-k", optarg, 0, 1L << 24, &v);
            sp->top_k = (int32_t)v;
            break;
        case OPT_TOP_P:
            bad = parse_float("--top-p", optarg, 0, 1, &sp->top_p);
            break;
        case OPT_MIN_P:
            bad = parse_float("--min-p", optarg, 0, 1, &sp->min_p);
            break;
        case OPT_REPEAT_PENALTY:
            bad = parse_float("--repeat-penalty", optarg, 0.01f, 100, &sp->repeat_penalty);
            break;
        case OPT_REPEAT_LAST_N:
            bad = parse_long("--repeat-last-n", optarg, 0, 1L << 20, &v);
            sp->repeat_last_n = (int32_t)v;
            break;
        case OPT_PRESENCE:
            bad = parse_float("--presence-penalty", optarg, -100, 100, &sp->presence_penalty);
            break;
        case OPT_FREQUENCY:
            bad = parse_float("--frequency-penalty", optarg, -100, 100, &sp->frequency_penalty);
            break;
        case OPT_SEED: {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(optarg, &end, 10);
            if (errno || end == optarg || *end || optarg[0] == '-') {
                fprintf(stderr, "ballast run: --seed expects a non-negative integer, got '%s'\n",
                        optarg);
                return 1;
            }
            sp->seed = s;
            have_seed = true;
            break;
        }
        case OPT_ISA:
            if (!strcmp(optarg, "scalar"))
                mp.isa = BL_ISA_SCALAR;
            else if (!strcmp(optarg, "avx2"))
                mp.isa = BL_ISA_AVX2;
            else if (!strcmp(optarg, "avx512"))
                mp.isa = BL_ISA_AVX512;
            else if (!strcmp(optarg, "auto"))
                mp.isa = BL_ISA_AUTO;
            else {
                fprintf(stderr, "ballast run: --isa expects scalar, avx2 or avx512, got '%s'\n",
                        optarg);
                return 1;
            }
            break;
        case OPT_CHAT:
            chat = true;
            break;
        case OPT_SYSTEM:
            system_msg = optarg;
            break;
        case OPT_TOOLS:
            tools_file = optarg;
            break;
        case OPT_VERBOSE_PROMPT:
            verbose_prompt = true;
            break;
        case 'h':
            fputs(USAGE, stdout);
            return 0;
        case ':':
            fprintf(stderr, "ballast run: option '%s' needs a value\n", argv[optind - 1]);
            return 1;
        default:
            fprintf(stderr, "ballast run: unknown option '%s'\n\n%s", argv[optind - 1], USAGE);
            return 1;
        }
        if (bad)
            return 1;
    }
    if (optind < argc) {
        fprintf(stderr, "ballast run: unexpected argument '%s'\n", argv[optind]);
        return 1;
    }
    if (!model_path) {
        fprintf(stderr, "ballast run: -m MODEL.gguf is required\n\n%s", USAGE);
        return 1;
    }
    if ((system_msg || tools_file) && !chat) {
        fprintf(stderr, "ballast run: %s needs --chat\n", system_msg ? "--system" : "--tools");
        return 1;
    }
    if (!prompt_arg == !prompt_file) {
        fprintf(stderr, "ballast run: give the prompt with exactly one of -p or -f\n");
        return 1;
    }

    int status = 1;
    char *file_text = NULL, *chat_text = NULL, *tools_json = NULL;
    bl_model_t *m = NULL;
    bl_ctx_t *c = NULL;
    const char *prompt = prompt_arg;
    size_t prompt_len = prompt_arg ? strlen(prompt_arg) : 0;
    if (prompt_file) {
        file_text = read_file(prompt_file, &prompt_len);
        if (!file_text)
            goto done;
        prompt = file_text;
    }
    if (!have_seed && getrandom(&sp->seed, sizeof sp->seed, 0) != sizeof sp->seed)
        sp->seed = (uint64_t)time(NULL) ^ ((uint64_t)clock() << 20);

    char err[512] = "";
    mp.n_threads = (int)threads;
    double t0 = now_ms();
    int rc = bl_model_load(model_path, &mp, &m, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "ballast run: %s\n", err[0] ? err : bl_strerror(rc));
        goto done;
    }
    const bl_model_info_t *info = bl_model_info(m);
    bl_ctx_params_t cp;
    bl_ctx_params_default(&cp);
    cp.n_ctx = n_ctx ? (uint32_t)n_ctx
                     : (info->n_ctx_train < DEFAULT_CTX ? info->n_ctx_train : DEFAULT_CTX);
    if ((rc = bl_ctx_new(m, &cp, &c, err, sizeof err)) < 0) {
        fprintf(stderr, "ballast run: %s\n", err);
        goto done;
    }
    fprintf(stderr,
            "ballast: loaded %s (%s, %.1fM params, %s, %u layers) in %.0f ms; kernels %s, "
            "context %u, seed %llu\n",
            model_path, info->arch, (double)info->n_params / 1e6, info->file_type, info->n_layer,
            now_ms() - t0, info->isa, bl_ctx_size(c), (unsigned long long)sp->seed);

    if (chat) {
        /* The prompt as the one user turn (after an optional system turn);
         * the template's end-of-turn markers become stop strings too. */
        size_t tools_len;
        char *raw = tools_file ? read_file(tools_file, &tools_len) : NULL;
        if (tools_file && !(raw && (tools_json = strndup(raw, tools_len)))) { /* NUL-terminated */
            free(raw);
            goto done;
        }
        free(raw);
        char *user = strndup(prompt, prompt_len);
        bl_chat_msg_t msgs[2] = {{"system", system_msg}, {"user", user}};
        size_t first = system_msg ? 0 : 1;
        rc = user ? bl_chat_render_tools(m, msgs + first, NULL, 2 - first, tools_json, true,
                                         &chat_text, &prompt_len)
                  : BL_ENOMEM;
        free(user);
        if (rc < 0) {
            fprintf(stderr, "ballast run: chat template: %s%s\n", bl_strerror(rc),
                    tools_json ? " (is the --tools file a JSON array?)" : "");
            goto done;
        }
        prompt = chat_text;
        if (bl_chat_template_known(m))
            fprintf(stderr, "ballast: chat template %s\n", bl_chat_template_name(m));
        else
            fprintf(stderr, "ballast: %s chat template, using ChatML\n",
                    info->chat_template ? "unknown" : "no");
        size_t n_eot;
        const char *const *eot = bl_chat_stop_strings(m, &n_eot);
        for (size_t i = 0; i < n_eot && n_stop < MAX_STOPS; i++)
            stops[n_stop++] = eot[i];
    }
    if (verbose_prompt && (fwrite(prompt, 1, prompt_len, stdout) != prompt_len || fflush(stdout)))
        goto done;

    struct sigaction sa = {0}, old_sa;
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, &old_sa);
    gp.max_tokens = (int32_t)n_predict;
    gp.stop = stops;
    gp.n_stop = n_stop;
    gp.on_text = put_text;
    gp.cancel = &g_cancel;
    bl_generate_result_t res;
    rc = bl_generate(c, prompt, prompt_len, &gp, &res);
    sigaction(SIGINT, &old_sa, NULL);
    if (rc == BL_ECONTEXT) {
        size_t n_tok = 0;
        bl_token_t *toks = malloc((prompt_len + 8) * sizeof *toks);
        if (toks)
            bl_tokenize(m, prompt, prompt_len, true, true, toks, prompt_len + 8, &n_tok);
        free(toks);
        fprintf(stderr,
                "\nballast run: the prompt is %zu tokens but the context holds %u "
                "(raise -c)\n",
                n_tok, bl_ctx_size(c));
        goto done;
    }
    if (rc < 0) {
        fprintf(stderr, "\nballast run: generation failed: %s\n", bl_strerror(rc));
        goto done;
    }
    fputc('\n', stderr);
    static const char *const finish[] = {"length", "stop", "canceled", "error"};
    fprintf(stderr,
            "ballast: prompt %zu tokens in %.1f ms (%.1f tok/s); generated %zu tokens in %.1f ms "
            "(%.1f tok/s); finish: %s\n",
            res.n_prompt, res.prefill_ms,
            res.prefill_ms > 0 ? (double)res.n_prompt * 1e3 / res.prefill_ms : 0.0, res.n_generated,
            res.decode_ms, res.decode_ms > 0 ? (double)res.n_generated * 1e3 / res.decode_ms : 0.0,
            finish[res.finish <= BL_FINISH_ERROR ? res.finish : BL_FINISH_ERROR]);
    status = 0;
done:
    bl_ctx_free(c);
    bl_model_free(m);
    free(file_text);
    free(chat_text);
    free(tools_json);
    return status;
}
