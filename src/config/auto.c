/*
 * Zero-config: the config `ballast serve` builds when it is given no file.
 *
 * It writes the YAML a user would have written and parses it with
 * bl_config_parse, so every default, check and free path is the one a file
 * gets. The rules:
 *
 *  - Cloud providers, one per API key found in the environment (a key must be
 *    printable ASCII without spaces, else it is ignored with a note):
 *      OPENAI_API_KEY     openai      https://api.openai.com/v1
 *                                     (OPENAI_BASE_URL overrides it, as in the
 *                                     OpenAI SDKs)
 *      OPENROUTER_API_KEY openrouter  https://openrouter.ai/api/v1
 *      GROQ_API_KEY       groq        https://api.groq.com/openai/v1
 *      TOGETHER_API_KEY   together    https://api.together.ai/v1
 *      MISTRAL_API_KEY    mistral     https://api.mistral.ai/v1
 *      DEEPSEEK_API_KEY   deepseek    https://api.deepseek.com/v1
 *      ANTHROPIC_API_KEY  anthropic   https://api.anthropic.com/v1 (type: anthropic;
 *                                     ANTHROPIC_BASE_URL overrides it, as in the
 *                                     Anthropic SDKs)
 *  - Local providers, one `type: local` per *.gguf file in the model store
 *    ($BALLAST_MODELS, default ~/.local/share/ballast/models), named
 *    "local-<file stem>" with the stem cut to letters, digits, '.', '_', '-'.
 *    With none there, the repository's demo model models/stories260K.gguf
 *    (found from the executable: ../models or ../../models) stands in.
 *  - Routes: each well-known OpenAI chat model name (gpt-4o-mini, gpt-4o,
 *    gpt-4.1*, gpt-5*, gpt-3.5-turbo) gets one tier per cloud in the order
 *    above — openai and openrouter with the same model, the others with their
 *    own small or large model by the name's class (Anthropic: Haiku or
 *    Sonnet, answered in OpenAI's shape by the translation) — and last the
 *    first local model. Each well-known Claude model name (what Claude Code
 *    sends) gets Anthropic first with that model, then the OpenAI-shaped
 *    clouds by class, then the local model. gpt-4o-mini also answers to "default". Each local model has a
 *    route named after its stem that goes to it alone.
 *  - listen: $BALLAST_LISTEN, default 127.0.0.1:8080. Everything else takes
 *    the defaults of a file that does not mention it.
 */
#include "config/config.h"

#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include <ballast/errors.h>

#include "util/util.h"

extern char **environ;

#define MAX_LOCAL_MODELS 64
#define MAX_STEM 64
#define DEMO_FILE "stories260K.gguf"

typedef enum { SMALL, LARGE } model_class_t;

typedef struct {
    const char *key_var;
    const char *name;
    const char *base_url;
    bool same_model;    /* sends the client's OpenAI model name (after prefix) */
    const char *prefix; /* prepended to that name */
    const char *small, *large;
} cloud_t;

/* Model names as the providers documented them in 2026; a file config can
 * always name others. */
static const cloud_t CLOUDS[] = {
    {"OPENAI_API_KEY", "openai", "https://api.openai.com/v1", true, "", NULL, NULL},
    {"OPENROUTER_API_KEY", "openrouter", "https://openrouter.ai/api/v1", true, "openai/", NULL,
     NULL},
    {"GROQ_API_KEY", "groq", "https://api.groq.com/openai/v1", false, NULL, "llama-3.1-8b-instant",
     "llama-3.3-70b-versatile"},
    {"TOGETHER_API_KEY", "together", "https://api.together.ai/v1", false, NULL,
     "meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo", "meta-llama/Llama-3.3-70B-Instruct-Turbo"},
    {"MISTRAL_API_KEY", "mistral", "https://api.mistral.ai/v1", false, NULL, "mistral-small-latest",
     "mistral-large-latest"},
    {"DEEPSEEK_API_KEY", "deepseek", "https://api.deepseek.com/v1", false, NULL, "deepseek-flash",
     "deepseek-flash"},
};

/* Anthropic: the cloud of the Claude routes, and the last cloud of the GPT ones. */
static const char ANTHROPIC_SMALL[] = "claude-haiku-4-5", ANTHROPIC_LARGE[] = "claude-sonnet-4-5";

static const struct {
    const char *name;
    model_class_t cls;
} CLAUDE_MODELS[] = {
    {"claude-sonnet-4-5", LARGE}, {"claude-opus-4-5", LARGE}, {"claude-haiku-4-5", SMALL},
    {"claude-opus-4-1", LARGE},   {"claude-sonnet-4-0", LARGE}, {"claude-3-5-haiku-latest", SMALL},
};

static const struct {
    const char *name;
    model_class_t cls;
} OPENAI_MODELS[] = {
    {"gpt-4o-mini", SMALL},  {"gpt-4o", LARGE},       {"gpt-4.1", LARGE},
    {"gpt-4.1-mini", SMALL}, {"gpt-4.1-nano", SMALL}, {"gpt-5", LARGE},
    {"gpt-5-mini", SMALL},   {"gpt-5-nano", SMALL},   {"gpt-3.5-turbo", SMALL},
};

typedef struct {
    char *path;               /* the file, as found */
    char name[MAX_STEM + 16]; /* "local-<stem>", maybe "-<n>" */
} local_model_t;

typedef struct {
    char **env;
    FILE *notes;
    const char *keys[BL_ARRAY_LEN(CLOUDS)]; /* NULL when that cloud is off */
    const char *anthropic_key;              /* NULL when off */
    local_model_t models[MAX_LOCAL_MODELS];
    size_t n_models;
    bool demo;
} scan_t;

static const char *env_get(char **env, const char *name)
{
    size_t n = strlen(name);
    for (char **e = env; e && *e; e++)
        if (!strncmp(*e, name, n) && (*e)[n] == '=')
            return (*e)[n + 1] ? *e + n + 1 : NULL;
    return NULL;
}

static void note(scan_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(scan_t *s, const char *fmt, ...)
{
    if (!s->notes)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("zero-config: ", s->notes);
    vfprintf(s->notes, fmt, ap);
    fputc('\n', s->notes);
    va_end(ap);
}

/* An API key goes into an Authorization header: printable, no spaces. */
static bool good_key(const char *k)
{
    for (; *k; k++)
        if ((unsigned char)*k <= 0x20 || (unsigned char)*k >= 0x7f)
            return false;
    return true;
}

/* A path goes into the YAML only as valid UTF-8 without control characters. */
static bool yaml_safe(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned char c = *p;
        size_t n = c < 0x80             ? 0
                   : (c & 0xe0) == 0xc0 ? 1
                   : (c & 0xf0) == 0xe0 ? 2
                   : (c & 0xf8) == 0xf0 ? 3
                                        : 9;
        if (n == 9 || c < 0x20 || c == 0x7f || (c >= 0xc0 && c < 0xc2))
            return false;
        for (size_t i = 1; i <= n; i++)
            if ((p[i] & 0xc0) != 0x80)
                return false;
        /* C1 controls, U+2028/2029 and a BOM: YAML folds or refuses them. */
        if ((c == 0xc2 && p[1] < 0xa0) || (c == 0xe2 && p[1] == 0x80 && (p[2] & 0xfe) == 0xa8) ||
            (c == 0xef && p[1] == 0xbb && p[2] == 0xbf))
            return false;
        p += n + 1;
    }
    return true;
}

/* A double-quoted YAML scalar. `$` doubles so `${...}` expansion leaves the
 * value as it is. */
static int put_q(bl_buf_t *b, const char *s)
{
    int rc = bl_buf_append(b, "\"", 1);
    for (; !rc && *s; s++) {
        if (*s == '"' || *s == '\\')
            rc = bl_buf_append(b, "\\", 1);
        else if (*s == '$')
            rc = bl_buf_append(b, "$", 1);
        if (!rc)
            rc = bl_buf_append(b, s, 1);
    }
    return rc ? rc : bl_buf_append(b, "\"", 1);
}

static int cmp_models(const void *a, const void *b)
{
    return strcmp(((const local_model_t *)a)->name, ((const local_model_t *)b)->name);
}

static bool has_gguf_suffix(const char *n)
{
    size_t len = strlen(n);
    return len > 5 && !strcasecmp(n + len - 5, ".gguf");
}

/* "local-" + the file's stem with anything outside [A-Za-z0-9._-] as '-'. */
static void provider_name(const char *file, char out[MAX_STEM + 16])
{
    size_t len = strlen(file) - 5, o = 6;
    memcpy(out, "local-", 6);
    for (size_t i = 0; i < len && i < MAX_STEM; i++) {
        char ch = file[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
        out[o++] = ok ? ch : '-';
    }
    out[o] = '\0';
}

/* The route name: the provider name without "local-". */
static const char *stem(const local_model_t *m)
{
    return m->name + 6;
}

static int add_model(scan_t *s, const char *path, const char *file)
{
    if (s->n_models == MAX_LOCAL_MODELS) {
        note(s, "more than %d models in the store; ignoring %s", MAX_LOCAL_MODELS, file);
        return 0;
    }
    local_model_t *m = &s->models[s->n_models];
    provider_name(file, m->name);
    m->path = strdup(path);
    if (!m->path)
        return BL_ENOMEM;
    s->n_models++;
    return 0;
}

static bool name_used(const scan_t *s, size_t upto, const char *name)
{
    for (size_t j = 0; j < upto; j++)
        if (!strcmp(s->models[j].name, name))
            return true;
    return false;
}

/* Two files that clean up to one name (a b.gguf, a_b.gguf): number the later. */
static void dedupe_names(scan_t *s)
{
    for (size_t i = 1; i < s->n_models; i++) {
        char *n = s->models[i].name;
        size_t base = strlen(n);
        for (unsigned k = 2; k < 1000 && name_used(s, i, n); k++)
            snprintf(n + base, 8, "-%u", k);
    }
}

static int scan_store(scan_t *s, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        if (errno != ENOENT)
            note(s, "cannot read the model store %s: %s", dir, strerror(errno));
        return 0;
    }
    int rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        if (e->d_name[0] == '.' || !has_gguf_suffix(e->d_name))
            continue;
        char path[PATH_MAX];
        struct stat st;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= sizeof path)
            continue;
        if (stat(path, &st) || !S_ISREG(st.st_mode))
            continue;
        if (!yaml_safe(path)) {
            note(s,
                 "skipping a model whose path is not valid UTF-8 (or has control characters) in %s",
                 dir);
            continue;
        }
        rc = add_model(s, path, e->d_name);
    }
    closedir(d);
    if (!rc) {
        qsort(s->models, s->n_models, sizeof s->models[0], cmp_models);
        dedupe_names(s);
    }
    return rc;
}

/* The demo model next to the binary: build/ballast -> ../models. */
static int find_demo(scan_t *s, const char *demo)
{
    char exe[PATH_MAX], path[PATH_MAX + 32];
    if (demo)
        return *demo && yaml_safe(demo) && !access(demo, R_OK) ? add_model(s, demo, DEMO_FILE) : 0;
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return 0;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return 0;
    *slash = '\0';
    static const char *const rel[] = {"/../models/" DEMO_FILE, "/../../models/" DEMO_FILE};
    for (size_t i = 0; i < BL_ARRAY_LEN(rel); i++) {
        snprintf(path, sizeof path, "%s%s", exe, rel[i]);
        char real[PATH_MAX];
        if (realpath(path, real) && !access(real, R_OK) && yaml_safe(real))
            return add_model(s, real, DEMO_FILE);
    }
    return 0;
}

static void scan_clouds(scan_t *s)
{
    for (size_t i = 0; i < BL_ARRAY_LEN(CLOUDS); i++) {
        const char *k = env_get(s->env, CLOUDS[i].key_var);
        if (k && !good_key(k))
            note(s, "%s has spaces or control characters; ignoring it", CLOUDS[i].key_var);
        else if (k)
            s->keys[i] = k;
    }
    const char *ak = env_get(s->env, "ANTHROPIC_API_KEY");
    if (ak && !good_key(ak))
        note(s, "ANTHROPIC_API_KEY has spaces or control characters; ignoring it");
    else if (ak)
        s->anthropic_key = ak;
    if (!s->keys[0] && env_get(s->env, "OPENAI_BASE_URL"))
        note(s, "OPENAI_BASE_URL is set but OPENAI_API_KEY is not: no openai provider");
}

static int write_providers(bl_buf_t *b, const scan_t *s)
{
    int rc = bl_buf_append_str(b, "providers:\n");
    for (size_t i = 0; !rc && i < BL_ARRAY_LEN(CLOUDS); i++) {
        if (!s->keys[i])
            continue;
        const char *url = CLOUDS[i].base_url;
        if (i == 0 && env_get(s->env, "OPENAI_BASE_URL"))
            url = env_get(s->env, "OPENAI_BASE_URL");
        if ((rc = bl_buf_append_str(b, "  - name: ")) || (rc = put_q(b, CLOUDS[i].name)) ||
            (rc = bl_buf_append_str(b, "\n    type: openai\n    base_url: ")) ||
            (rc = put_q(b, url)) || (rc = bl_buf_append_str(b, "\n    api_key: ")) ||
            (rc = put_q(b, s->keys[i])) || (rc = bl_buf_append_str(b, "\n")))
            return rc;
    }
    if (!rc && s->anthropic_key) {
        const char *url = env_get(s->env, "ANTHROPIC_BASE_URL");
        if ((rc = bl_buf_append_str(b, "  - name: anthropic\n    type: anthropic\n")) ||
            (url && ((rc = bl_buf_append_str(b, "    base_url: ")) || (rc = put_q(b, url)) ||
                     (rc = bl_buf_append_str(b, "\n")))) ||
            (rc = bl_buf_append_str(b, "    api_key: ")) || (rc = put_q(b, s->anthropic_key)) ||
            (rc = bl_buf_append_str(b, "\n")))
            return rc;
    }
    for (size_t i = 0; !rc && i < s->n_models; i++) {
        if ((rc = bl_buf_append_str(b, "  - name: ")) || (rc = put_q(b, s->models[i].name)) ||
            (rc = bl_buf_append_str(b, "\n    type: local\n    model: ")) ||
            (rc = put_q(b, s->models[i].path)) || (rc = bl_buf_append_str(b, "\n")))
            return rc;
    }
    return rc;
}

static int write_target(bl_buf_t *b, const char *provider, const char *prefix, const char *model)
{
    int rc = bl_buf_append_str(b, "      - [{provider: ");
    if (!rc)
        rc = put_q(b, provider);
    if (!rc)
        rc = bl_buf_append_str(b, ", model: ");
    if (!rc) {
        bl_buf_t m = {0};
        rc = bl_buf_printf(&m, "%s%s", prefix, model);
        if (!rc)
            rc = put_q(b, m.data);
        bl_buf_free(&m);
    }
    return rc ? rc : bl_buf_append_str(b, "}]\n");
}

static bool route_taken(const scan_t *s, const char *name, size_t upto_model)
{
    for (size_t i = 0; i < BL_ARRAY_LEN(OPENAI_MODELS); i++)
        if (!strcmp(OPENAI_MODELS[i].name, name))
            return true;
    for (size_t i = 0; i < BL_ARRAY_LEN(CLAUDE_MODELS); i++)
        if (!strcmp(CLAUDE_MODELS[i].name, name))
            return true;
    if (!strcmp(name, "default"))
        return true;
    for (size_t i = 0; i < upto_model; i++)
        if (!strcmp(stem(&s->models[i]), name))
            return true;
    return false;
}

/* The OpenAI-shaped clouds, one tier each, for a model of class cls
 * (same_model clouds get `name`, or the class's GPT model when name is NULL). */
static int write_cloud_tiers(bl_buf_t *b, const scan_t *s, const char *name, model_class_t cls)
{
    int rc = 0;
    for (size_t i = 0; !rc && i < BL_ARRAY_LEN(CLOUDS); i++) {
        const cloud_t *c = &CLOUDS[i];
        if (!s->keys[i])
            continue;
        if (c->same_model)
            rc = write_target(b, c->name, c->prefix,
                              name ? name : cls == SMALL ? "gpt-4o-mini" : "gpt-4o");
        else
            rc = write_target(b, c->name, "", cls == SMALL ? c->small : c->large);
    }
    return rc;
}

static int write_routes(bl_buf_t *b, const scan_t *s, size_t n_clouds)
{
    int rc = bl_buf_append_str(b, "routes:\n");
    size_t tiers = n_clouds + (s->anthropic_key != NULL) + (s->n_models > 0);
    unsigned attempts = (unsigned)BL_MIN(16, tiers + 1 > 4 ? tiers + 1 : 4);
    for (size_t r = 0; !rc && r < BL_ARRAY_LEN(OPENAI_MODELS); r++) {
        const char *name = OPENAI_MODELS[r].name;
        model_class_t cls = OPENAI_MODELS[r].cls;
        rc = bl_buf_printf(b, "  - model: %s\n%s    max_attempts: %u\n    tiers:\n", name,
                           r == 0 ? "    aliases: [default]\n" : "", attempts);
        if (!rc)
            rc = write_cloud_tiers(b, s, name, cls);
        if (!rc && s->anthropic_key)
            rc = write_target(b, "anthropic", "", cls == SMALL ? ANTHROPIC_SMALL : ANTHROPIC_LARGE);
        if (!rc && s->n_models)
            rc = write_target(b, s->models[0].name, "", stem(&s->models[0]));
    }
    /* Claude Code's model names: Anthropic, then the other clouds, then local */
    for (size_t r = 0; !rc && r < BL_ARRAY_LEN(CLAUDE_MODELS) && tiers; r++) {
        const char *name = CLAUDE_MODELS[r].name;
        rc = bl_buf_printf(b, "  - model: %s\n    max_attempts: %u\n    tiers:\n", name, attempts);
        if (!rc && s->anthropic_key)
            rc = write_target(b, "anthropic", "", name);
        if (!rc)
            rc = write_cloud_tiers(b, s, NULL, CLAUDE_MODELS[r].cls);
        if (!rc && s->n_models)
            rc = write_target(b, s->models[0].name, "", stem(&s->models[0]));
    }
    for (size_t i = 0; !rc && i < s->n_models; i++) {
        if (route_taken(s, stem(&s->models[i]), i))
            continue; /* a file named gpt-4o.gguf is still reachable through local tiers */
        if ((rc = bl_buf_append_str(b, "  - model: ")) || (rc = put_q(b, stem(&s->models[i]))) ||
            (rc = bl_buf_append_str(b, "\n    tiers:\n")))
            break;
        rc = write_target(b, s->models[i].name, "", stem(&s->models[i]));
    }
    return rc;
}

static int models_dir(scan_t *s, const char *given, char *out, size_t outlen)
{
    const char *d = given ? given : env_get(s->env, "BALLAST_MODELS");
    if (d)
        return (size_t)snprintf(out, outlen, "%s", d) < outlen ? 0 : BL_ERANGE;
    const char *home = env_get(s->env, "HOME");
    if (!home) {
        out[0] = '\0'; /* no store; the demo model may still serve */
        return 0;
    }
    return (size_t)snprintf(out, outlen, "%s/.local/share/ballast/models", home) < outlen
               ? 0
               : BL_ERANGE;
}

int bl_config_auto(const bl_auto_opts_t *o, bl_config_t **out, char *err, size_t errlen)
{
    static const bl_auto_opts_t none = {0};
    scan_t s = {.env = o && o->env ? o->env : environ, .notes = o ? o->notes : NULL};
    bl_buf_t y = {0};
    char dir[PATH_MAX];
    bl_config_t *c = NULL;
    int rc;
    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    if (!o)
        o = &none;

    scan_clouds(&s);
    size_t n_clouds = 0;
    for (size_t i = 0; i < BL_ARRAY_LEN(CLOUDS); i++)
        n_clouds += s.keys[i] != NULL;
    if ((rc = models_dir(&s, o->models_dir, dir, sizeof dir))) {
        if (err && errlen)
            snprintf(err, errlen, "zero-config: the model store path is too long");
        goto done;
    }
    if (dir[0] && (rc = scan_store(&s, dir)))
        goto done;
    if (s.n_models == 0) {
        if ((rc = find_demo(&s, o->demo_model)))
            goto done;
        s.demo = s.n_models > 0;
    }
    if (n_clouds == 0 && !s.anthropic_key && s.n_models == 0) {
        if (err && errlen)
            snprintf(
                err, errlen,
                "zero-config: nothing to serve: no API key in the environment (OPENAI_API_KEY, "
                "ANTHROPIC_API_KEY, OPENROUTER_API_KEY, GROQ_API_KEY, TOGETHER_API_KEY, "
                "MISTRAL_API_KEY, DEEPSEEK_API_KEY) and no .gguf model in %s; set a key, run "
                "`ballast models pull qwen2.5-0.5b`, or give a config with -c FILE",
                dir[0] ? dir : "the model store (HOME and BALLAST_MODELS are unset)");
        rc = BL_ENOENT;
        goto done;
    }

    const char *listen = env_get(s.env, "BALLAST_LISTEN");
    if ((rc = bl_buf_append_str(&y, "listen: ")) ||
        (rc = put_q(&y, listen ? listen : "127.0.0.1:8080")) ||
        (rc = bl_buf_append_str(&y, "\n")) || (rc = write_providers(&y, &s)) ||
        (rc = write_routes(&y, &s, n_clouds)))
        goto done;
    rc = bl_config_parse(y.data, y.len, "zero-config", &c, err, errlen);
    if (rc)
        goto done;
    /* Line numbers point into YAML nobody sees; the printer leaves 0 out. */
    for (size_t i = 0; i < c->n_providers; i++)
        c->providers[i].line = 0;
    for (size_t i = 0; i < c->n_routes; i++)
        c->routes[i].line = 0;
    bl_buf_t f = {0};
    if ((rc = bl_buf_printf(&f, "(none: zero-config from the environment%s%s)",
                            dir[0] ? " and " : "", dir))) {
        bl_buf_free(&f);
        goto done;
    }
    free(c->file);
    c->file = bl_buf_steal(&f, NULL);
    if (!c->file) {
        rc = BL_ENOMEM;
        goto done;
    }

    for (size_t i = 0; i < BL_ARRAY_LEN(CLOUDS); i++)
        if (s.keys[i])
            note(&s, "%s found: provider '%s'", CLOUDS[i].key_var, CLOUDS[i].name);
    if (s.anthropic_key)
        note(&s, "ANTHROPIC_API_KEY found: provider 'anthropic' (Claude model routes first, and "
                 "the last cloud of the GPT routes)");
    if (n_clouds == 0 && !s.anthropic_key)
        note(&s, "no cloud API key in the environment: local model only");
    if (s.demo)
        note(&s,
             "no model in %s; using the demo model %s. It is a 260K-parameter model trained on "
             "children's stories: it only writes tiny stories. For a real local fallback run "
             "`ballast models pull qwen2.5-0.5b` and restart (or send SIGHUP)",
             dir[0] ? dir : "the model store", s.models[0].path);
    else if (s.n_models > 1)
        note(&s,
             "%zu local models; the gpt-* routes fall back to %s, the others answer to "
             "their own names",
             s.n_models, stem(&s.models[0]));
done:
    if (rc == BL_ENOMEM && err && errlen)
        snprintf(err, errlen, "zero-config: out of memory");
    if (rc) {
        bl_config_unref(c);
        c = NULL;
    }
    if (y.data) {
        OPENSSL_cleanse(y.data, y.cap); /* it holds the API keys */
        bl_buf_free(&y);
    }
    for (size_t i = 0; i < s.n_models; i++)
        free(s.models[i].path);
    *out = c;
    return rc;
}
