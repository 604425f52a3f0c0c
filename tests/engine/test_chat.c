/*
 * Chat templates: each family renders a fixed conversation exactly as that
 * family's shipped template does (expected strings written from the
 * families' documented formats), with and without the generation prompt,
 * without a system message, and with a partial assistant message left open
 * for continuation. Detection maps the real templates in
 * $BALLAST_SHARED/models/templates to their families and anything else to
 * ChatML with known = false.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "test_files.h"

#include "engine/chat/chat.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const bl_chat_msg_t FULL[] = {
    {"system", "You are a helpful assistant"},
    {"user", "Hello"},
    {"assistant", "Hi there"},
    {"user", "Who are you"},
};
static const bl_chat_msg_t NOSYS[] = {
    {"user", "Hello"},
    {"assistant", "Hi there"},
    {"user", "Who are you"},
};
/* A partial answer: its trailing space must survive for continuation. */
static const bl_chat_msg_t CONT[] = {
    {"system", "You are a helpful assistant"},
    {"user", "Hello"},
    {"assistant", "Hi there"},
    {"user", "Who are you"},
    {"assistant", "I am an "},
};

static const bl_chat_opts_t SPM = {"<s>", "</s>", true, NULL};
static const bl_chat_opts_t SPM_NO_BOS = {"<s>", "</s>", false, NULL};
static const bl_chat_opts_t QWEN = {"", "<|im_end|>", false, NULL};
static const bl_chat_opts_t LLAMA3 = {"<|begin_of_text|>", "<|eot_id|>", true, "01 Jan 2025"};
static const bl_chat_opts_t LLAMA3_NO_BOS = {"<|begin_of_text|>", "<|eot_id|>", false,
                                             "01 Jan 2025"};
static const bl_chat_opts_t LLAMA31 = {"<|begin_of_text|>", "<|eot_id|>", true, NULL};
static const bl_chat_opts_t PHI3 = {"<s>", "<|endoftext|>", false, NULL};
static const bl_chat_opts_t GEMMA = {"<bos>", "<eos>", true, NULL};
static const bl_chat_opts_t GEMMA_NO_BOS = {"<bos>", "<eos>", false, NULL};

static void check(bl_chat_family_t f, const bl_chat_opts_t *o, const bl_chat_msg_t *m, size_t n,
                  bool gen, const char *want)
{
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(bl_chat_render_family(f, o, m, n, gen, &out, &len), 0);
    assert_non_null(out);
    if (strcmp(out, want))
        print_error("family %s gen %d\n got: [%s]\nwant: [%s]\n", bl_chat_family_name(f), gen, out,
                    want);
    assert_string_equal(out, want);
    assert_int_equal(len, strlen(want));
    free(out);
}

/* ---- ChatML and its variants --------------------------------------------- */

#define IM(role, text) "<|im_start|>" role "\n" text "<|im_end|>\n"
#define CHATML_BODY IM("user", "Hello") IM("assistant", "Hi there") IM("user", "Who are you")
#define CHATML_FULL IM("system", "You are a helpful assistant") CHATML_BODY
#define IM_GEN "<|im_start|>assistant\n"

static void test_chatml(void **state)
{
    (void)state;
    check(BL_CHAT_CHATML, &QWEN, FULL, N(FULL), true, CHATML_FULL IM_GEN);
    check(BL_CHAT_CHATML, &QWEN, FULL, N(FULL), false, CHATML_FULL);
    check(BL_CHAT_CHATML, &QWEN, NOSYS, N(NOSYS), true, CHATML_BODY IM_GEN);
    check(BL_CHAT_CHATML, &QWEN, CONT, N(CONT), false, CHATML_FULL IM_GEN "I am an ");
    /* With the generation prompt the partial turn is closed and a new one opens. */
    check(BL_CHAT_CHATML, &QWEN, CONT, N(CONT), true,
          CHATML_FULL IM("assistant", "I am an ") IM_GEN);
    check(BL_CHAT_CHATML, &QWEN, NULL, 0, true, IM_GEN);
    /* ChatML writes content verbatim: no trimming. */
    const bl_chat_msg_t ws[] = {{"user", "  spaced  "}};
    check(BL_CHAT_CHATML, &QWEN, ws, 1, false, IM("user", "  spaced  "));
}

#define QWEN_DEFAULT                                                                               \
    IM("system", "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.")

static void test_qwen25(void **state)
{
    (void)state;
    check(BL_CHAT_QWEN25, &QWEN, FULL, N(FULL), true, CHATML_FULL IM_GEN);
    check(BL_CHAT_QWEN25, &QWEN, NOSYS, N(NOSYS), true, QWEN_DEFAULT CHATML_BODY IM_GEN);
    check(BL_CHAT_QWEN25, &QWEN, NOSYS, N(NOSYS), false, QWEN_DEFAULT CHATML_BODY);
    check(BL_CHAT_QWEN25, &QWEN, CONT, N(CONT), false, CHATML_FULL IM_GEN "I am an ");
    check(BL_CHAT_QWEN25, &QWEN, NULL, 0, true, QWEN_DEFAULT IM_GEN);
    /* Consecutive tool results share one user turn. */
    const bl_chat_msg_t tools[] = {{"user", "q"}, {"tool", "r1"}, {"tool", "r2"}};
    check(BL_CHAT_QWEN25, &QWEN, tools, N(tools), false,
          QWEN_DEFAULT IM("user", "q") "<|im_start|>user\n<tool_response>\nr1\n</tool_response>"
                                       "\n<tool_response>\nr2\n</tool_response><|im_end|>\n");
}

static void test_qwen3(void **state)
{
    (void)state;
    check(BL_CHAT_QWEN3, &QWEN, FULL, N(FULL), true, CHATML_FULL IM_GEN);
    check(BL_CHAT_QWEN3, &QWEN, FULL, N(FULL), false, CHATML_FULL);
    check(BL_CHAT_QWEN3, &QWEN, NOSYS, N(NOSYS), true, CHATML_BODY IM_GEN); /* no default */
    /* The last assistant turn after the last query carries an (empty) think block. */
    check(BL_CHAT_QWEN3, &QWEN, CONT, N(CONT), false,
          CHATML_FULL IM_GEN "<think>\n\n</think>\n\nI am an ");
    check(BL_CHAT_QWEN3, &QWEN, CONT, N(CONT), true,
          CHATML_FULL IM_GEN "<think>\n\n</think>\n\nI am an <|im_end|>\n" IM_GEN);
    /* Reasoning in history (before the last query) is dropped... */
    const bl_chat_msg_t hist[] = {
        {"user", "Hello"},
        {"assistant", "<think>\nlet me think\n</think>\n\nHi there"},
        {"user", "Who are you"},
    };
    check(BL_CHAT_QWEN3, &QWEN, hist, N(hist), true, CHATML_BODY IM_GEN);
    /* ...but kept after it. */
    const bl_chat_msg_t after[] = {
        {"user", "Hello"},
        {"assistant", "<think>\n\nplan\n\n</think>\n\nHi"},
    };
    check(BL_CHAT_QWEN3, &QWEN, after, N(after), true,
          IM("user", "Hello") IM_GEN "<think>\nplan\n</think>\n\nHi<|im_end|>\n" IM_GEN);
}

#define SMOL3_HEAD(mode, instr)                                                                    \
    "<|im_start|>system\n## Metadata\n\nKnowledge Cutoff Date: June 2025\nReasoning Mode: " mode   \
    "\n\n## Custom Instructions\n\n" instr "\n\n<|im_end|>\n"

static void test_smollm3(void **state)
{
    (void)state;
    check(BL_CHAT_SMOLLM3, &QWEN, FULL, N(FULL), true,
          SMOL3_HEAD("/think", "You are a helpful assistant") CHATML_BODY IM_GEN);
    check(BL_CHAT_SMOLLM3, &QWEN, CONT, N(CONT), false,
          SMOL3_HEAD("/think", "You are a helpful assistant") CHATML_BODY IM_GEN "I am an ");
    /* /no_think in the system prompt: removed from it, empty think blocks. */
    const bl_chat_msg_t nothink[] = {
        {"system", "Be brief. /no_think  "},
        {"user", "Hello"},
        {"assistant", "\nHi there"},
        {"user", "Who are you"},
    };
    check(BL_CHAT_SMOLLM3, &QWEN, nothink, N(nothink), true,
          SMOL3_HEAD("/no_think", "Be brief.")
              IM("user", "Hello") "<|im_start|>assistant\n<think>\n\n</think>\nHi "
                                  "there<|im_end|>\n" IM("user", "Who are you") IM_GEN
          "<think>\n\n</think>\n");
    /* No system message: the long default instructions. */
    char *out = NULL;
    assert_int_equal(
        bl_chat_render_family(BL_CHAT_SMOLLM3, &QWEN, NOSYS, N(NOSYS), true, &out, NULL), 0);
    assert_non_null(strstr(out, "Reasoning Mode: /think\n\n## Custom Instructions\n\nYou are a "
                                "helpful AI assistant named SmolLM, trained by Hugging Face. Your "
                                "role as an assistant"));
    assert_non_null(
        strstr(out, "needed to reach the conclusion.\n\n<|im_end|>\n" CHATML_BODY IM_GEN));
    free(out);
}

static void test_smollm2(void **state)
{
    (void)state;
    check(BL_CHAT_SMOLLM2, &QWEN, FULL, N(FULL), true, CHATML_FULL IM_GEN);
    check(BL_CHAT_SMOLLM2, &QWEN, NOSYS, N(NOSYS), true,
          IM("system", "You are a helpful AI assistant named SmolLM, trained by Hugging Face")
              CHATML_BODY IM_GEN);
}

/* ---- Llama 3 ------------------------------------------------------------- */

#define HDR(role) "<|start_header_id|>" role "<|end_header_id|>\n\n"
#define L3(role, text) HDR(role) text "<|eot_id|>"
#define L3_BODY L3("user", "Hello") L3("assistant", "Hi there") L3("user", "Who are you")
#define L3_PRE(date) HDR("system") "Cutting Knowledge Date: December 2023\nToday Date: " date "\n\n"

static void test_llama3(void **state)
{
    (void)state;
    check(BL_CHAT_LLAMA3, &LLAMA3, FULL, N(FULL), true,
          L3("system", "You are a helpful assistant") L3_BODY HDR("assistant"));
    check(BL_CHAT_LLAMA3, &LLAMA3, NOSYS, N(NOSYS), false, L3_BODY);
    check(BL_CHAT_LLAMA3, &LLAMA3_NO_BOS, NOSYS, N(NOSYS), true,
          "<|begin_of_text|>" L3_BODY HDR("assistant"));
    /* Content is trimmed, except the open turn's tail. */
    const bl_chat_msg_t ws[] = {{"user", "  Hello \n"}, {"assistant", "  I am "}};
    check(BL_CHAT_LLAMA3, &LLAMA3, ws, N(ws), false, L3("user", "Hello") HDR("assistant") "I am ");
}

static void test_llama32(void **state)
{
    (void)state;
    check(BL_CHAT_LLAMA32, &LLAMA3, FULL, N(FULL), true,
          L3_PRE("01 Jan 2025") "You are a helpful assistant<|eot_id|>" L3_BODY HDR("assistant"));
    check(BL_CHAT_LLAMA32, &LLAMA3, FULL, N(FULL), false,
          L3_PRE("01 Jan 2025") "You are a helpful assistant<|eot_id|>" L3_BODY);
    /* No system message: the preamble still comes, with an empty system text. */
    check(BL_CHAT_LLAMA32, &LLAMA3, NOSYS, N(NOSYS), true,
          L3_PRE("01 Jan 2025") "<|eot_id|>" L3_BODY HDR("assistant"));
    check(BL_CHAT_LLAMA32, &LLAMA3, CONT, N(CONT), false,
          L3_PRE("01 Jan 2025") "You are a helpful assistant<|eot_id|>" L3_BODY HDR(
              "assistant") "I am an ");
    check(BL_CHAT_LLAMA32, &LLAMA3_NO_BOS, NULL, 0, false,
          "<|begin_of_text|>" L3_PRE("01 Jan 2025") "<|eot_id|>");
    /* Tool results are ipython turns, written through tojson (a string "is
     * iterable" to Jinja). */
    const bl_chat_msg_t tool[] = {{"tool", " {\"t\": 1} "}};
    check(BL_CHAT_LLAMA32, &LLAMA3, tool, 1, false,
          L3_PRE("01 Jan 2025") "<|eot_id|>" L3("ipython", "\" {\\\"t\\\": 1} \""));

    /* Without a date, 3.2 (strftime_now) writes today's: "DD Mon YYYY". */
    char *out = NULL;
    assert_int_equal(bl_chat_render_family(BL_CHAT_LLAMA32, &LLAMA31, NULL, 0, false, &out, NULL),
                     0);
    const char *d = strstr(out, "Today Date: ");
    assert_non_null(d);
    d += strlen("Today Date: ");
    assert_true(d[0] >= '0' && d[0] <= '3' && d[1] >= '0' && d[1] <= '9' && d[2] == ' ');
    assert_true(d[6] == ' ' && !strncmp(d + 7, "20", 2) && !strcmp(d + 11, "\n\n<|eot_id|>"));
    free(out);
}

static void test_llama31(void **state)
{
    (void)state;
    /* 3.1's template has no strftime_now: the date is fixed. */
    check(BL_CHAT_LLAMA31, &LLAMA31, NOSYS, N(NOSYS), true,
          L3_PRE("26 Jul 2024") "<|eot_id|>" L3_BODY HDR("assistant"));
}

/* ---- Llama 2, Phi-3, Gemma ----------------------------------------------- */

#define L2_FULL                                                                                    \
    "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST] Hi there </s>"         \
    "<s>[INST] Who are you [/INST]"

static void test_llama2(void **state)
{
    (void)state;
    check(BL_CHAT_LLAMA2, &SPM, FULL, N(FULL), true, L2_FULL);
    check(BL_CHAT_LLAMA2, &SPM, FULL, N(FULL), false, L2_FULL);
    check(BL_CHAT_LLAMA2, &SPM_NO_BOS, FULL, N(FULL), true, "<s>" L2_FULL);
    check(BL_CHAT_LLAMA2, &SPM, NOSYS, N(NOSYS), true,
          "[INST] Hello [/INST] Hi there </s><s>[INST] Who are you [/INST]");
    check(BL_CHAT_LLAMA2, &SPM, CONT, N(CONT), false, L2_FULL " I am an ");
    const bl_chat_msg_t ws[] = {{"user", " Hi  "}, {"assistant", "  Yo  "}, {"user", "x"}};
    check(BL_CHAT_LLAMA2, &SPM, ws, N(ws), true, "[INST] Hi [/INST] Yo </s><s>[INST] x [/INST]");
}

#define PHI_BODY                                                                                   \
    "<|user|>\nHello<|end|>\n<|assistant|>\nHi there<|end|>\n<|user|>\nWho are you<|end|>\n"
#define PHI_FULL "<|system|>\nYou are a helpful assistant<|end|>\n" PHI_BODY

static void test_phi3(void **state)
{
    (void)state;
    check(BL_CHAT_PHI3, &PHI3, FULL, N(FULL), true, PHI_FULL "<|assistant|>\n");
    /* A finished chat without a generation prompt ends with EOS. */
    check(BL_CHAT_PHI3, &PHI3, FULL, N(FULL), false, PHI_FULL "<|endoftext|>");
    check(BL_CHAT_PHI3, &PHI3, NOSYS, N(NOSYS), true, PHI_BODY "<|assistant|>\n");
    check(BL_CHAT_PHI3, &PHI3, CONT, N(CONT), false, PHI_FULL "<|assistant|>\nI am an ");
    const bl_chat_msg_t empty_sys[] = {{"system", ""}, {"user", "Hello"}};
    check(BL_CHAT_PHI3, &PHI3, empty_sys, N(empty_sys), true,
          "<|user|>\nHello<|end|>\n<|assistant|>\n");
}

#define GT(role, text) "<start_of_turn>" role "\n" text "<end_of_turn>\n"
#define G_REST GT("model", "Hi there") GT("user", "Who are you")

static void test_gemma(void **state)
{
    (void)state;
    check(BL_CHAT_GEMMA, &GEMMA, FULL, N(FULL), true,
          GT("user", "You are a helpful assistant\n\nHello") G_REST "<start_of_turn>model\n");
    check(BL_CHAT_GEMMA, &GEMMA, FULL, N(FULL), false,
          GT("user", "You are a helpful assistant\n\nHello") G_REST);
    check(BL_CHAT_GEMMA, &GEMMA_NO_BOS, NOSYS, N(NOSYS), true,
          "<bos>" GT("user", "Hello") G_REST "<start_of_turn>model\n");
    check(BL_CHAT_GEMMA, &GEMMA, CONT, N(CONT), false,
          GT("user", "You are a helpful assistant\n\nHello") G_REST
          "<start_of_turn>model\nI am an ");
    const bl_chat_msg_t ws[] = {{"system", " S "}, {"user", " U "}, {"assistant", " A "}};
    check(BL_CHAT_GEMMA, &GEMMA, ws, N(ws), true,
          GT("user", "S\n\nU") GT("model", "A") "<start_of_turn>model\n");
}

/* ---- bad input, stop strings --------------------------------------------- */

static void test_bad_input(void **state)
{
    (void)state;
    char *out = (char *)1;
    const bl_chat_msg_t bad_role[] = {{"narrator", "x"}};
    const bl_chat_msg_t null_content[] = {{"user", NULL}};
    const bl_chat_msg_t null_role[] = {{NULL, "x"}};
    for (int f = 0; f < BL_CHAT_N_FAMILIES; f++) {
        assert_int_equal(bl_chat_render_family(f, NULL, bad_role, 1, true, &out, NULL), BL_EINVAL);
        assert_int_equal(bl_chat_render_family(f, NULL, null_content, 1, true, &out, NULL),
                         BL_EINVAL);
        assert_int_equal(bl_chat_render_family(f, NULL, null_role, 1, true, &out, NULL), BL_EINVAL);
        assert_int_equal(bl_chat_render_family(f, NULL, NULL, 2, true, &out, NULL), BL_EINVAL);
        /* Every family renders every role without crashing, default options included. */
        const bl_chat_msg_t all[] = {{"system", "s"},    {"user", "u"},    {"tool", "t"},
                                     {"assistant", "a"}, {"system", "s2"}, {"assistant", "p"}};
        for (int gen = 0; gen < 2; gen++) {
            out = NULL;
            assert_int_equal(bl_chat_render_family(f, NULL, all, N(all), gen, &out, NULL), 0);
            assert_non_null(out);
            assert_non_null(strstr(out, "u"));
            free(out);
        }
    }
    assert_int_equal(bl_chat_render_family(BL_CHAT_N_FAMILIES, NULL, FULL, 1, true, &out, NULL),
                     BL_EINVAL);
}

static void test_stops(void **state)
{
    (void)state;
    size_t n;
    const char *const *s = bl_chat_family_stops(BL_CHAT_QWEN3, &n);
    assert_true(n >= 1);
    assert_string_equal(s[0], "<|im_end|>");
    s = bl_chat_family_stops(BL_CHAT_LLAMA32, &n);
    assert_string_equal(s[0], "<|eot_id|>");
    s = bl_chat_family_stops(BL_CHAT_PHI3, &n);
    assert_string_equal(s[0], "<|end|>");
    s = bl_chat_family_stops(BL_CHAT_GEMMA, &n);
    assert_string_equal(s[0], "<end_of_turn>");
    s = bl_chat_family_stops(BL_CHAT_LLAMA2, &n);
    assert_string_equal(s[0], "</s>");
}

/* ---- detection ----------------------------------------------------------- */

static void test_detect_fixtures(void **state)
{
    (void)state;
    const char *shared = getenv("BALLAST_SHARED");
    if (!shared)
        shared = "../shared";
    static const struct {
        const char *file, *family;
    } cases[] = {
        {"Qwen-Qwen2.5-7B-Instruct.jinja", "qwen2.5"},
        {"Qwen-Qwen3-0.6B.jinja", "qwen3"},
        {"meta-llama-Llama-3.2-3B-Instruct.jinja", "llama3.2"},
        {"microsoft-Phi-3.5-mini-instruct.jinja", "phi3"},
        {"google-gemma-2-2b-it.jinja", "gemma"},
        {"HuggingFaceTB-SmolLM3-3B.jinja", "smollm3"},
    };
    for (size_t i = 0; i < N(cases); i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/models/templates/%s", shared, cases[i].file);
        char *t = slurp(path, NULL);
        bool known = false;
        bl_chat_family_t f = bl_chat_detect_family(t, &known);
        if (strcmp(bl_chat_family_name(f), cases[i].family))
            fail_msg("%s detected as %s, want %s", cases[i].file, bl_chat_family_name(f),
                     cases[i].family);
        assert_true(known);
        free(t);
    }
}

static void test_detect_inline(void **state)
{
    (void)state;
    static const struct {
        const char *tmpl, *family;
        bool known;
    } cases[] = {
        /* OpenHermes: plain ChatML. */
        {"{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
         "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}",
         "chatml", true},
        /* Llama 3.0: headers, no preamble. */
        {"{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
         "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ "
         "message['content'] | trim + '<|eot_id|>' %}{{ content }}{% endfor %}",
         "llama3", true},
        /* Llama 3.1: preamble with a fixed date. */
        {"{%- set date_string = \"26 Jul 2024\" %}<|start_header_id|>system<|end_header_id|>"
         "Cutting Knowledge Date: December 2023",
         "llama3.1", true},
        /* Llama 2 chat. */
        {"{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' "
         "[/INST]' }}{% endif %}{% set content = '<<SYS>>\\n' + system_message %}",
         "llama2", true},
        {"{% for m in messages %}<|user|>\n{{ m.content }}<|end|>\n<|assistant|>\n{% endfor %}",
         "phi3", true},
        {"{{ '<start_of_turn>' + role }}", "gemma", true},
        {"<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
         "Face<|im_end|>",
         "smollm2", true},
        /* Not ours: Mistral, Phi-4, Zephyr, garbage, empty. */
        {"{{ bos_token }}{% for m in messages %}[INST] {{ m.content }} [/INST]{% endfor %}",
         "chatml", false},
        {"<|im_start|>{{ role }}<|im_sep|>", "chatml", false},
        {"<|user|>\n{{ content }}</s>", "chatml", false},
        {"\x01\xff garbage {{", "chatml", false},
        {"", "chatml", false},
    };
    for (size_t i = 0; i < N(cases); i++) {
        bool known = !cases[i].known;
        bl_chat_family_t f = bl_chat_detect_family(cases[i].tmpl, &known);
        if (strcmp(bl_chat_family_name(f), cases[i].family) || known != cases[i].known)
            fail_msg("case %zu detected as %s (known %d), want %s (known %d)", i,
                     bl_chat_family_name(f), known, cases[i].family, cases[i].known);
    }
    bool known = true;
    assert_int_equal(bl_chat_detect_family(NULL, &known), BL_CHAT_CHATML);
    assert_false(known);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chatml),        cmocka_unit_test(test_qwen25),
        cmocka_unit_test(test_qwen3),         cmocka_unit_test(test_smollm3),
        cmocka_unit_test(test_smollm2),       cmocka_unit_test(test_llama3),
        cmocka_unit_test(test_llama32),       cmocka_unit_test(test_llama31),
        cmocka_unit_test(test_llama2),        cmocka_unit_test(test_phi3),
        cmocka_unit_test(test_gemma),         cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_stops),         cmocka_unit_test(test_detect_fixtures),
        cmocka_unit_test(test_detect_inline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
