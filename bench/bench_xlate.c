/*
 * The CPU cost of translating one request and its answer between API
 * families, without the network: what bench/xlate.sh measures end to end,
 * here in isolation so a change to a reader or writer can be measured
 * within a microsecond.
 *
 *   bench_xlate [iterations]     (default 20000)
 *
 * For each path: parse the client's body, write the target's body, read
 * the target's whole answer and write the client's (non-streamed), then the
 * same answer as a 16-chunk stream. Prints microseconds per request and the
 * CPU it ran on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xlate/xlate.h"

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static const char RESP_BODY[] =
    "{\"model\":\"gpt-x\",\"instructions\":\"You are a coding agent.\",\"input\":[{\"role\":\"user\","
    "\"content\":[{\"type\":\"input_text\",\"text\":\"List the files.\"}]}],\"tools\":[{\"type\":"
    "\"function\",\"name\":\"exec_command\",\"parameters\":{\"type\":\"object\",\"properties\":{"
    "\"cmd\":{\"type\":\"string\"}},\"required\":[\"cmd\"]}}],\"max_output_tokens\":256}";
static const char MSG_BODY[] =
    "{\"model\":\"claude-x\",\"max_tokens\":256,\"system\":\"You are a coding agent.\",\"messages\":"
    "[{\"role\":\"user\",\"content\":\"List the files.\"}],\"tools\":[{\"name\":\"Bash\","
    "\"input_schema\":{\"type\":\"object\",\"properties\":{\"command\":{\"type\":\"string\"}},"
    "\"required\":[\"command\"]}}]}";
static const char CHAT_ANSWER[] =
    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"gpt-4o\","
    "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hello from the "
    "mock: here are the files you asked for.\"},\"finish_reason\":\"stop\"}],\"usage\":{"
    "\"prompt_tokens\":20,\"completion_tokens\":12,\"total_tokens\":32}}";

typedef struct {
    bl_xwrite_t *w;
    bl_buf_t *out;
} pipe_t;

static int to_writer(void *ud, const bl_xev_t *ev)
{
    pipe_t *p = ud;
    return bl_xwrite_event(p->w, ev, p->out);
}

static int one(bl_family_t client, const char *body, bl_buf_t *tb, bl_buf_t *out, bool stream,
               char chunks[][192], size_t n_chunks)
{
    bl_xreq_t *q;
    bl_xerr_t err;
    bl_xread_t *r;
    bl_xwrite_t *w;
    if (bl_xreq_parse(client, body, strlen(body), &q, &err))
        return -1;
    bl_xwrite_req_opts_t ro = {.model = "gpt-4o"};
    bl_buf_reset(tb);
    bl_buf_reset(out);
    if (bl_xreq_write(q, BL_FAM_CHAT, &ro, tb, &err) || bl_xread_new(BL_FAM_CHAT, &r))
        return -1;
    bl_xwrite_opts_t wo = {.stream = stream, .model = "gpt-4o", .req = q};
    if (bl_xwrite_new(client, &wo, &w))
        return -1;
    pipe_t p = {w, out};
    int rc = 0;
    if (!stream) {
        rc = bl_xread_body(r, CHAT_ANSWER, sizeof CHAT_ANSWER - 1, to_writer, &p);
    } else {
        for (size_t i = 0; !rc && i < n_chunks; i++)
            rc = bl_xread_event(r, (bl_str_t){NULL, 0}, (bl_str_t){chunks[i], strlen(chunks[i])},
                                to_writer, &p);
    }
    if (!rc)
        rc = bl_xwrite_end(w, out);
    bl_xwrite_free(w);
    bl_xread_free(r);
    bl_xreq_free(q);
    return rc;
}

int main(int argc, char **argv)
{
    int iters = argc > 1 ? atoi(argv[1]) : 20000;
    static char chunks[20][192];
    size_t n = 0;
    snprintf(chunks[n++], 192,
             "{\"id\":\"c\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":"
             "{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}");
    for (int i = 0; i < 16; i++)
        snprintf(chunks[n++], 192,
                 "{\"id\":\"c\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":"
                 "{\"content\":\"tok%d \"},\"finish_reason\":null}]}",
                 i);
    snprintf(chunks[n++], 192,
             "{\"id\":\"c\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},"
             "\"finish_reason\":\"stop\"}]}");
    snprintf(chunks[n++], 192, "[DONE]");

    char cpu[128] = "?";
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10)) {
            snprintf(cpu, sizeof cpu, "%s", strchr(line, ':') + 2);
            cpu[strcspn(cpu, "\n")] = 0;
            break;
        }
    if (f)
        fclose(f);
    printf("cpu: %s\niterations: %d\n\n", cpu, iters);
    printf("| path | whole answer (us/request) | 16-chunk stream (us/request) |\n| --- | ---: | ---: |\n");
    struct {
        const char *name;
        bl_family_t fam;
        const char *body;
    } paths[] = {{"responses -> chat", BL_FAM_RESPONSES, RESP_BODY},
                 {"messages -> chat", BL_FAM_ANTHROPIC, MSG_BODY}};
    bl_buf_t tb = {0}, out = {0};
    for (size_t k = 0; k < 2; k++) {
        double us[2];
        for (int s = 0; s < 2; s++) {
            for (int i = 0; i < iters / 10; i++) /* warm up */
                one(paths[k].fam, paths[k].body, &tb, &out, s, chunks, n);
            double t0 = now_us();
            for (int i = 0; i < iters; i++)
                if (one(paths[k].fam, paths[k].body, &tb, &out, s, chunks, n)) {
                    fprintf(stderr, "%s: translation failed\n", paths[k].name);
                    return 1;
                }
            us[s] = (now_us() - t0) / iters;
        }
        printf("| %s | %.2f | %.2f |\n", paths[k].name, us[0], us[1]);
    }
    bl_buf_free(&tb);
    bl_buf_free(&out);
    return 0;
}
