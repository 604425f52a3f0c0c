/*
 * Rendering messages per template family. Each renderer writes what the
 * family's shipped Jinja template writes; see chat.h for the conventions on
 * BOS, open assistant turns and folded system prompts. Tool definitions and
 * calls are written here for the families whose templates have them; the
 * others get tools.c's Hermes fallback before they are rendered.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/chat/chat.h"

/* ---- Python-style strip() on spans ---------------------------------------- */

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static span_t span(const char *s)
{
    return (span_t){s, strlen(s)};
}

static span_t lstrip(span_t s, bool only_nl)
{
    while (s.n && (only_nl ? s.p[0] == '\n' : is_ws(s.p[0]))) {
        s.p++;
        s.n--;
    }
    return s;
}

static span_t rstrip(span_t s, bool only_nl)
{
    while (s.n && (only_nl ? s.p[s.n - 1] == '\n' : is_ws(s.p[s.n - 1])))
        s.n--;
    return s;
}

static span_t strip(span_t s)
{
    return rstrip(lstrip(s, false), false);
}

static void puts_(sb_t *b, span_t s)
{
    putn(b, s.p, s.n);
}

/* First (or last) occurrence of needle in s, or NULL. */
static const char *find(span_t s, const char *needle, bool last)
{
    size_t k = strlen(needle);
    const char *hit = NULL;
    for (size_t i = 0; k <= s.n && i <= s.n - k; i++) {
        if (!memcmp(s.p + i, needle, k)) {
            hit = s.p + i;
            if (!last)
                break;
        }
    }
    return hit;
}

/* ---- shared pieces ------------------------------------------------------ */

typedef struct {
    sb_t *b;
    const bl_chat_opts_t *o;
    const bl_chat_msg_t *m;
    size_t n;
    bool gen;                     /* add_generation_prompt */
    bool open_last;               /* the last message is an assistant turn left open */
    const bl_chat_msg_tools_t *x; /* tool calls of the messages, or NULL */
    const span_t *tools;          /* tool definitions, one JSON value each */
    size_t n_tools;
    bool tools_given; /* a tools list was passed, even an empty one */
    int err;          /* a renderer refused the conversation (BL_EINVAL) */
} job_t;

static bool is(const bl_chat_msg_t *m, const char *role)
{
    return !strcmp(m->role, role);
}

/* Tool calls of message i (assistants only). */
static size_t n_calls(const job_t *j, size_t i)
{
    return j->x && is(&j->m[i], "assistant") ? j->x[i].n_tool_calls : 0;
}

static const bl_chat_tool_call_t *call(const job_t *j, size_t i, size_t c)
{
    return &j->x[i].tool_calls[c];
}

/* Content, "" when an assistant message with tool calls has none. */
static const char *text(const bl_chat_msg_t *m)
{
    return m->content ? m->content : "";
}

static bool is_open(const job_t *j, size_t i)
{
    return j->open_last && i + 1 == j->n;
}

static void put_bos(const job_t *j)
{
    if (!j->o->add_bos && j->o->bos_text)
        put(j->b, j->o->bos_text);
}

/* System text waiting to be folded into the next user turn ("\n\n" joins). */
typedef struct {
    sb_t text;
} pending_t;

static void pend(pending_t *p, span_t s)
{
    if (p->text.n)
        put(&p->text, "\n\n");
    puts_(&p->text, s);
}

/* ---- ChatML, Qwen 2.5, SmolLM 2 ----------------------------------------- */

static void chatml_turn(sb_t *b, const char *role, span_t content, bool open)
{
    put(b, "<|im_start|>");
    put(b, role);
    put(b, "\n");
    puts_(b, content);
    if (!open)
        put(b, "<|im_end|>\n");
}

/* Qwen groups consecutive tool results into one user turn. */
static void qwen_tool(const job_t *j, size_t i)
{
    if (i == 0 || !is(&j->m[i - 1], "tool"))
        put(j->b, "<|im_start|>user");
    put(j->b, "\n<tool_response>\n");
    put(j->b, j->m[i].content);
    put(j->b, "\n</tool_response>");
    if (i + 1 == j->n || !is(&j->m[i + 1], "tool"))
        put(j->b, "<|im_end|>\n");
}

/* Qwen's system turn with tools: the system text (when first_system), then
 * the Hermes tools section. */
static void qwen_tools_system(const job_t *j, const char *def)
{
    bool has_sys = j->n && is(&j->m[0], "system");
    put(j->b, "<|im_start|>system\n");
    if (has_sys)
        put(j->b, j->m[0].content);
    else if (def)
        put(j->b, def);
    if (has_sys || def)
        put(j->b, "\n\n");
    bl_chat_put_hermes_tools(j->b, j->tools, j->n_tools);
    put(j->b, "<|im_end|>\n");
}

/* Qwen 2.5's assistant turn with calls: arguments always through tojson. */
static void qwen25_calls(const job_t *j, size_t i)
{
    const bl_chat_msg_t *m = &j->m[i];
    put(j->b, "<|im_start|>assistant");
    if (*text(m)) {
        put(j->b, "\n");
        put(j->b, m->content);
    }
    for (size_t c = 0; c < n_calls(j, i); c++) {
        put(j->b, "\n");
        bl_chat_put_hermes_call(j->b, call(j, i, c), false);
    }
    put(j->b, "<|im_end|>\n");
}

static void render_chatml(const job_t *j, bl_chat_family_t f)
{
    const char *def = NULL;
    size_t i = 0;
    if (f == BL_CHAT_QWEN25)
        def = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";
    else if (f == BL_CHAT_SMOLLM2 && j->n) /* its default is written inside the loop */
        def = "You are a helpful AI assistant named SmolLM, trained by Hugging Face";
    if (f == BL_CHAT_QWEN25 && j->n_tools) {
        qwen_tools_system(j, def);
        if (j->n && is(&j->m[0], "system"))
            i = 1;
    } else if (def && (j->n == 0 || !is(&j->m[0], "system"))) {
        chatml_turn(j->b, "system", span(def), false);
    }
    for (; i < j->n; i++) {
        if (f == BL_CHAT_QWEN25 && is(&j->m[i], "tool"))
            qwen_tool(j, i);
        else if (f == BL_CHAT_QWEN25 && n_calls(j, i))
            qwen25_calls(j, i);
        else
            chatml_turn(j->b, j->m[i].role, span(text(&j->m[i])), is_open(j, i));
    }
    if (j->gen)
        put(j->b, "<|im_start|>assistant\n");
}

/* ---- Qwen 3 ------------------------------------------------------------- */

static bool is_tool_response(const char *s)
{
    size_t n = strlen(s);
    static const char a[] = "<tool_response>", z[] = "</tool_response>";
    return n >= sizeof a - 1 && !memcmp(s, a, sizeof a - 1) && n >= sizeof z - 1 &&
           !memcmp(s + n - (sizeof z - 1), z, sizeof z - 1);
}

static void render_qwen3(const job_t *j)
{
    /* Reasoning is kept only on assistant turns after the last real user
     * query (tool results posing as user turns do not count). */
    size_t last_query = j->n ? j->n - 1 : 0;
    for (size_t i = j->n; i-- > 0;) {
        if (is(&j->m[i], "user") && !is_tool_response(j->m[i].content)) {
            last_query = i;
            break;
        }
    }
    size_t i = 0;
    if (j->n_tools) {
        qwen_tools_system(j, NULL);
        if (j->n && is(&j->m[0], "system"))
            i = 1;
    }
    for (; i < j->n; i++) {
        const bl_chat_msg_t *m = &j->m[i];
        if (is(m, "tool")) {
            qwen_tool(j, i);
            continue;
        }
        if (!is(m, "assistant")) {
            chatml_turn(j->b, m->role, span(m->content), false);
            continue;
        }
        span_t content = span(text(m)), reasoning = {"", 0};
        const char *end_last = find(content, "</think>", true);
        if (end_last) {
            const char *end_first = find(content, "</think>", false);
            span_t before = rstrip((span_t){content.p, (size_t)(end_first - content.p)}, true);
            const char *start = find(before, "<think>", true);
            if (start)
                before = (span_t){start + 7, (size_t)(before.p + before.n - (start + 7))};
            reasoning = lstrip(before, true);
            const char *after = end_last + 8;
            content = lstrip((span_t){after, (size_t)(content.p + content.n - after)}, true);
        }
        put(j->b, "<|im_start|>assistant\n");
        bool has_content = content.n > 0; /* the template tests it before any lstrip */
        if (i > last_query && (i + 1 == j->n || reasoning.n)) {
            put(j->b, "<think>\n");
            puts_(j->b, rstrip(lstrip(reasoning, true), true));
            put(j->b, "\n</think>\n\n");
            content = lstrip(content, true);
        }
        puts_(j->b, content);
        for (size_t c = 0; c < n_calls(j, i); c++) {
            if (c > 0 || has_content)
                put(j->b, "\n");
            bl_chat_put_hermes_call(j->b, call(j, i, c), true);
        }
        if (!is_open(j, i))
            put(j->b, "<|im_end|>\n");
    }
    if (j->gen)
        put(j->b, "<|im_start|>assistant\n");
}

/* ---- SmolLM 3 ----------------------------------------------------------- */

static const char SMOLLM3_THINK_DEFAULT[] =
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face. Your role as an "
    "assistant involves thoroughly exploring questions through a systematic thinking process "
    "before providing the final precise and accurate solutions. This requires engaging in a "
    "comprehensive cycle of analysis, summarizing, exploration, reassessment, reflection, "
    "backtracking, and iteration to develop well-considered thinking process. Please structure "
    "your response into two main sections: Thought and Solution using the specified format: "
    "<think> Thought section </think> Solution section. In the Thought section, detail your "
    "reasoning process in steps. Each step should include detailed considerations such as "
    "analysing questions, summarizing relevant findings, brainstorming new ideas, verifying the "
    "accuracy of the current steps, refining any errors, and revisiting previous steps. In the "
    "Solution section, based on various attempts, explorations, and reflections from the Thought "
    "section, systematically present the final solution that you deem correct. The Solution "
    "section should be logical, accurate, and concise and detail necessary steps needed to reach "
    "the conclusion.";

/* Append s to b with every occurrence of word removed. */
static void put_without(sb_t *b, span_t s, const char *word)
{
    size_t k = strlen(word);
    for (size_t i = 0; i < s.n;) {
        if (s.n - i >= k && !memcmp(s.p + i, word, k)) {
            i += k;
            continue;
        }
        putn(b, s.p + i, 1);
        i++;
    }
}

static void render_smollm3(const job_t *j)
{
    bool think = true; /* enable_thinking defaults to true */
    sb_t custom = {0};
    if (j->n && is(&j->m[0], "system")) {
        span_t sys = span(j->m[0].content);
        if (find(sys, "/no_think", false))
            think = false;
        else if (find(sys, "/think", false))
            think = true;
        sb_t tmp = {0};
        put_without(&tmp, sys, "/no_think");
        if (tmp.n)
            put_without(&custom, (span_t){tmp.p, tmp.n}, "/think");
        free(tmp.p);
        j->b->oom |= tmp.oom || custom.oom;
        custom.n = custom.n ? rstrip((span_t){custom.p, custom.n}, false).n : 0;
    }
    put(j->b, "<|im_start|>system\n## Metadata\n\nKnowledge Cutoff Date: June 2025\n");
    put(j->b, think ? "Reasoning Mode: /think\n\n" : "Reasoning Mode: /no_think\n\n");
    put(j->b, "## Custom Instructions\n\n");
    if (custom.n)
        putn(j->b, custom.p, custom.n);
    else if (think)
        put(j->b, SMOLLM3_THINK_DEFAULT);
    else
        put(j->b, "You are a helpful AI assistant named SmolLM, trained by Hugging Face.");
    put(j->b, "\n\n<|im_end|>\n");
    free(custom.p);
    const char *opener = think ? "<|im_start|>assistant\n"
                               : "<|im_start|>assistant\n"
                                 "<think>\n\n</think>\n";
    for (size_t i = 0; i < j->n; i++) {
        const bl_chat_msg_t *m = &j->m[i];
        if (is(m, "user") || is(m, "tool")) { /* tool results go in as user turns */
            chatml_turn(j->b, "user", span(m->content), false);
        } else if (is(m, "assistant")) {
            put(j->b, opener);
            puts_(j->b, lstrip(span(m->content), true));
            if (!is_open(j, i))
                put(j->b, "<|im_end|>\n");
        } /* the template writes system messages only into the header */
    }
    if (j->gen)
        put(j->b, opener);
}

/* ---- Llama 2 ------------------------------------------------------------ */

static void llama2_user(const job_t *j, bool *first, pending_t *sys, span_t content)
{
    if (!*first || !j->o->add_bos)
        put(j->b, j->o->bos_text ? j->o->bos_text : "");
    *first = false;
    put(j->b, "[INST] ");
    if (sys->text.n) {
        /* The template strips "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + user. */
        sb_t all = {0};
        put(&all, "<<SYS>>\n");
        putn(&all, sys->text.p, sys->text.n);
        put(&all, "\n<</SYS>>\n\n");
        puts_(&all, content);
        j->b->oom |= all.oom;
        if (all.p)
            puts_(j->b, strip((span_t){all.p, all.n}));
        free(all.p);
        sys->text.n = 0;
    } else {
        puts_(j->b, strip(content));
    }
    put(j->b, " [/INST]");
}

static void render_llama2(const job_t *j)
{
    pending_t sys = {0};
    bool first = true;
    for (size_t i = 0; i < j->n; i++) {
        const bl_chat_msg_t *m = &j->m[i];
        if (is(m, "system")) {
            pend(&sys, span(m->content));
        } else if (is(m, "assistant")) {
            if (sys.text.n)
                llama2_user(j, &first, &sys, span(""));
            put(j->b, " ");
            if (is_open(j, i)) {
                puts_(j->b, lstrip(span(m->content), false));
            } else {
                puts_(j->b, strip(span(m->content)));
                put(j->b, " ");
                put(j->b, j->o->eos_text ? j->o->eos_text : "");
            }
        } else {
            llama2_user(j, &first, &sys, span(m->content));
        }
    }
    if (sys.text.n)
        llama2_user(j, &first, &sys, span(""));
    j->b->oom |= sys.text.oom;
    free(sys.text.p);
    /* No generation prompt: the model answers right after " [/INST]". */
}

/* ---- Llama 3, 3.1, 3.2 -------------------------------------------------- */

static void llama3_header(sb_t *b, const char *role)
{
    put(b, "<|start_header_id|>");
    put(b, role);
    put(b, "<|end_header_id|>\n\n");
}

static void today(char *buf, size_t cap)
{
    static const char *const mon[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = time(NULL);
    struct tm tm;
    if (!localtime_r(&t, &tm) || tm.tm_mon < 0 || tm.tm_mon > 11) {
        snprintf(buf, cap, "26 Jul 2024");
        return;
    }
    /* Local time, as transformers' and llama.cpp's strftime_now; but %b would
     * follow the locale and the template means English. */
    snprintf(buf, cap, "%02d %s %04d", tm.tm_mday, mon[tm.tm_mon], tm.tm_year + 1900);
}

static void render_llama3(job_t *j, bl_chat_family_t f)
{
    put_bos(j);
    size_t i = 0;
    bool tools_role = f != BL_CHAT_LLAMA3;
    if (f != BL_CHAT_LLAMA3) {
        char date[32];
        if (j->o->date)
            snprintf(date, sizeof date, "%s", j->o->date);
        else if (f == BL_CHAT_LLAMA32)
            today(date, sizeof date);
        else
            snprintf(date, sizeof date, "26 Jul 2024");
        llama3_header(j->b, "system");
        if (j->tools_given)
            put(j->b, "Environment: ipython\n");
        put(j->b, "Cutting Knowledge Date: December 2023\nToday Date: ");
        put(j->b, date);
        put(j->b, "\n\n");
        if (j->n && is(&j->m[0], "system"))
            puts_(j->b, strip(span(j->m[i++].content)));
        put(j->b, "<|eot_id|>");
        if (j->tools_given) {
            /* tools_in_user_message (the template's default): the list goes
             * into the first message after the system one, whatever it is. */
            if (i >= j->n) {
                j->err = BL_EINVAL; /* the template raises: no first user message */
                return;
            }
            llama3_header(j->b, "user");
            put(j->b, "Given the following functions, please respond with a JSON for a function "
                      "call with its proper arguments that best answers the given prompt.\n\n"
                      "Respond in the format {\"name\": function name, \"parameters\": "
                      "dictionary of argument name and its value}.Do not use variables.\n\n");
            static const bl_chat_json_style_t indent4 = {",", ": ", 4};
            for (size_t t = 0; t < j->n_tools; t++) {
                bl_chat_json_write(j->b, j->tools[t].p, j->tools[t].n, &indent4);
                put(j->b, "\n\n");
            }
            puts_(j->b, strip(span(text(&j->m[i++]))));
            put(j->b, "<|eot_id|>");
        }
    }
    for (; i < j->n; i++) {
        const bl_chat_msg_t *m = &j->m[i];
        if (tools_role && is(m, "tool")) {
            /* "ipython" turns; a string "is iterable" to Jinja, so the
             * template writes it through tojson, quotes and all. */
            llama3_header(j->b, "ipython");
            bl_chat_json_put_string(j->b, m->content, strlen(m->content));
            put(j->b, "<|eot_id|>");
            continue;
        }
        if (tools_role && n_calls(j, i)) {
            /* The template allows one call a turn; more become more turns. */
            for (size_t c = 0; c < n_calls(j, i); c++) {
                llama3_header(j->b, "assistant");
                put(j->b, "{\"name\": \"");
                put(j->b, call(j, i, c)->name);
                put(j->b, "\", \"parameters\": ");
                bl_chat_put_args_tojson(j->b, call(j, i, c)->arguments);
                put(j->b, "}<|eot_id|>");
            }
            continue;
        }
        llama3_header(j->b, m->role);
        if (is_open(j, i)) {
            puts_(j->b, lstrip(span(m->content), false));
        } else {
            puts_(j->b, strip(span(m->content)));
            put(j->b, "<|eot_id|>");
        }
    }
    if (j->gen)
        llama3_header(j->b, "assistant");
}

/* ---- Phi-3 -------------------------------------------------------------- */

static void render_phi3(const job_t *j)
{
    for (size_t i = 0; i < j->n; i++) {
        const bl_chat_msg_t *m = &j->m[i];
        if (is(m, "system")) {
            if (!*m->content) /* the template drops an empty system message */
                continue;
            put(j->b, "<|system|>\n");
        } else if (is(m, "assistant")) {
            put(j->b, "<|assistant|>\n");
        } else {
            put(j->b, "<|user|>\n"); /* tool results too: the template has no tool role */
        }
        put(j->b, m->content);
        if (!is_open(j, i))
            put(j->b, "<|end|>\n");
    }
    if (j->gen)
        put(j->b, "<|assistant|>\n");
    else if (!j->open_last && j->o->eos_text)
        put(j->b, j->o->eos_text); /* the template closes a finished chat with EOS */
}

/* ---- Gemma -------------------------------------------------------------- */

static void gemma_user(const job_t *j, pending_t *sys, span_t content)
{
    put(j->b, "<start_of_turn>user\n");
    if (sys->text.n) {
        putn(j->b, sys->text.p, sys->text.n);
        if (content.n)
            put(j->b, "\n\n");
        sys->text.n = 0;
    }
    puts_(j->b, strip(content));
    put(j->b, "<end_of_turn>\n");
}

static void render_gemma(const job_t *j)
{
    pending_t sys = {0};
    put_bos(j);
    for (size_t i = 0; i < j->n; i++) {
        const bl_chat_msg_t *m = &j->m[i];
        if (is(m, "system")) {
            pend(&sys, strip(span(m->content)));
        } else if (is(m, "assistant")) {
            if (sys.text.n)
                gemma_user(j, &sys, span(""));
            put(j->b, "<start_of_turn>model\n");
            if (is_open(j, i)) {
                puts_(j->b, lstrip(span(m->content), false));
            } else {
                puts_(j->b, strip(span(m->content)));
                put(j->b, "<end_of_turn>\n");
            }
        } else {
            gemma_user(j, &sys, span(m->content));
        }
    }
    if (sys.text.n)
        gemma_user(j, &sys, span(""));
    j->b->oom |= sys.text.oom;
    free(sys.text.p);
    if (j->gen)
        put(j->b, "<start_of_turn>model\n");
}

/* ---- entry -------------------------------------------------------------- */

static bool valid_role(const char *r)
{
    return r && (!strcmp(r, "system") || !strcmp(r, "user") || !strcmp(r, "assistant") ||
                 !strcmp(r, "tool"));
}

static bool valid_msg(const bl_chat_msg_t *m, const bl_chat_msg_tools_t *x)
{
    if (!valid_role(m->role))
        return false;
    size_t nc = x ? x->n_tool_calls : 0;
    bool calls = nc && !strcmp(m->role, "assistant");
    if (nc && !x->tool_calls)
        return false;
    if (!m->content && !calls)
        return false;
    for (size_t c = 0; calls && c < nc; c++)
        if (!x->tool_calls[c].name)
            return false;
    return true;
}

static int render(bl_chat_family_t f, job_t *j);

int bl_chat_render_family(bl_chat_family_t f, const bl_chat_opts_t *o, const bl_chat_msg_t *msgs,
                          size_t n, bool add_generation_prompt, char **out, size_t *len)
{
    return bl_chat_render_family_x(f, o, msgs, NULL, n, NULL, add_generation_prompt, out, len);
}

int bl_chat_render_family_x(bl_chat_family_t f, const bl_chat_opts_t *o, const bl_chat_msg_t *msgs,
                            const bl_chat_msg_tools_t *x, size_t n, const char *tools_json,
                            bool add_generation_prompt, char **out, size_t *len)
{
    static const bl_chat_opts_t no_opts = {"", "", true, NULL};
    if (!out || (n && !msgs) || (unsigned)f >= BL_CHAT_N_FAMILIES)
        return BL_EINVAL;
    *out = NULL;
    if (len)
        *len = 0;
    bool any_calls = false;
    for (size_t i = 0; i < n; i++) {
        if (!valid_msg(&msgs[i], x ? &x[i] : NULL))
            return BL_EINVAL;
        any_calls |= x && x[i].n_tool_calls && is(&msgs[i], "assistant");
    }
    if (!o)
        o = &no_opts;
    span_t *tools = NULL;
    size_t n_tools = 0, n_plain = 0, n_strings = 0;
    bl_chat_msg_t *plain = NULL;
    char **strings = NULL;
    int rc = 0;
    if (tools_json && (rc = bl_chat_json_items(tools_json, strlen(tools_json), &tools, &n_tools)))
        return rc;
    /* An assistant turn with calls is finished, in whatever form it is written. */
    bool open_last = !add_generation_prompt && n && is(&msgs[n - 1], "assistant") &&
                     !(x && x[n - 1].n_tool_calls);
    if (!bl_chat_family_has_tools(f) && (n_tools || any_calls)) {
        if ((rc = bl_chat_hermes_fallback(msgs, x, n, tools, n_tools, &plain, &n_plain, &strings,
                                          &n_strings)))
            goto done;
        msgs = plain;
        x = NULL;
        n = n_plain;
        free(tools);
        tools = NULL;
        n_tools = 0;
    }
    sb_t b = {0};
    job_t j = {
        .b = &b,
        .o = o,
        .m = msgs,
        .n = n,
        .gen = add_generation_prompt,
        .open_last = open_last,
        .x = x,
        .tools = tools,
        .n_tools = n_tools,
        .tools_given = tools_json && bl_chat_family_has_tools(f),
    };
    if ((rc = render(f, &j))) {
        free(b.p);
        goto done;
    }
    *out = b.p;
    if (len)
        *len = b.n;
done:
    for (size_t i = 0; i < n_strings; i++)
        free(strings[i]);
    free(strings);
    free(plain);
    free(tools);
    return rc;
}

static int render(bl_chat_family_t f, job_t *j)
{
    switch (f) {
    case BL_CHAT_QWEN3:
        render_qwen3(j);
        break;
    case BL_CHAT_SMOLLM3:
        render_smollm3(j);
        break;
    case BL_CHAT_LLAMA2:
        render_llama2(j);
        break;
    case BL_CHAT_LLAMA3:
    case BL_CHAT_LLAMA31:
    case BL_CHAT_LLAMA32:
        render_llama3(j, f);
        break;
    case BL_CHAT_PHI3:
        render_phi3(j);
        break;
    case BL_CHAT_GEMMA:
        render_gemma(j);
        break;
    default:
        render_chatml(j, f);
        break;
    }
    if (j->err)
        return j->err;
    if (j->b->oom)
        return BL_ENOMEM;
    if (!j->b->p && !(j->b->p = calloc(1, 1))) /* nothing rendered: still a valid string */
        return BL_ENOMEM;
    return 0;
}
