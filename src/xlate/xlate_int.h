/*
 * Internal to xlate: what each family file provides. Every family has
 *   <fam>_req.c     bl_x<fam>_parse, bl_x<fam>_write_req (Responses and
 *                   Anthropic: <fam>_parse.c and <fam>_build.c)
 *   <fam>_read.c    a reader (target side): bl_x<fam>_reader_new
 *   <fam>_write.c   a writer (client side): bl_x<fam>_writer_new
 * and core.c dispatches on bl_family_t.
 */
#ifndef BL_XLATE_INT_H
#define BL_XLATE_INT_H

#include "xlate/xlate.h"

typedef struct {
    int (*event)(bl_xread_t *r, bl_str_t event, bl_str_t data, bl_xev_fn fn, void *ud);
    int (*body)(bl_xread_t *r, const char *body, size_t n, bl_xev_fn fn, void *ud);
    void (*free)(bl_xread_t *r);
    int (*eof)(bl_xread_t *r, bl_xev_fn fn, void *ud); /* may be NULL */
} bl_xread_ops_t;

/* Each family's reader embeds this first. */
struct bl_xread {
    const bl_xread_ops_t *ops;
    bl_family_t family;
    bl_xstate_t st;   /* kept up to date by the family reader (see bl_xread_state) */
    bool done;        /* the family's end of stream went by */
};

typedef struct {
    int (*event)(bl_xwrite_t *w, const bl_xev_t *ev, bl_buf_t *out);
    int (*end)(bl_xwrite_t *w, bl_buf_t *out);
    int (*fail)(bl_xwrite_t *w, bl_xerr_kind_t k, const char *message, bl_buf_t *out);
    void (*free)(bl_xwrite_t *w);
} bl_xwrite_ops_t;

/* Each family's writer embeds this first. The base owns copies of the
 * option strings (model, id) so callers' buffers may go away. */
struct bl_xwrite {
    const bl_xwrite_ops_t *ops;
    bl_family_t family;
    bl_xwrite_opts_t o;
    char model[128];
    char id[128];
    char failover_from[160], failover_to[160]; /* "" unless bl_xwrite_note_failover */
    bl_xstate_t st;     /* resumed from, or the writer's own progress */
    bool resumed;       /* continues a stream the client has seen part of */
};

/* Fill the base of a new writer: copies opts strings, makes an id with
 * prefix when o->id is NULL, sets created. st may be NULL. */
void bl_xwrite_base_init(bl_xwrite_t *w, const bl_xwrite_ops_t *ops, bl_family_t f,
                         const bl_xwrite_opts_t *o, const bl_xstate_t *st, const char *id_prefix);
void bl_xread_base_init(bl_xread_t *r, const bl_xread_ops_t *ops, bl_family_t f);

/* Family entry points. */
int bl_xchat_parse(const char *body, size_t n, bl_xreq_t **out, bl_xerr_t *err);
int bl_xchat_write_req(const bl_xreq_t *q, const bl_xwrite_req_opts_t *o, bl_buf_t *out,
                       bl_xerr_t *err);
int bl_xchat_reader_new(bl_xread_t **out);
int bl_xchat_writer_new(const bl_xwrite_opts_t *o, const bl_xstate_t *st, bl_xwrite_t **out);

int bl_xresp_parse(const char *body, size_t n, bl_xreq_t **out, bl_xerr_t *err);
int bl_xresp_write_req(const bl_xreq_t *q, const bl_xwrite_req_opts_t *o, bl_buf_t *out,
                       bl_xerr_t *err);
int bl_xresp_reader_new(bl_xread_t **out);
int bl_xresp_writer_new(const bl_xwrite_opts_t *o, const bl_xstate_t *st, bl_xwrite_t **out);

int bl_xanth_parse(const char *body, size_t n, bl_xreq_t **out, bl_xerr_t *err);
int bl_xanth_write_req(const bl_xreq_t *q, const bl_xwrite_req_opts_t *o, bl_buf_t *out,
                       bl_xerr_t *err);
int bl_xanth_reader_new(bl_xread_t **out);
int bl_xanth_writer_new(const bl_xwrite_opts_t *o, const bl_xstate_t *st, bl_xwrite_t **out);

/* Shared helpers. */
void bl_xerr_set(bl_xerr_t *e, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "system", "developer", "user", "assistant", "tool" -> role; false if none. */
bool bl_xrole_parse(const char *s, bl_role_t *out);
/* "stop" etc. for each family. */
const char *bl_xfinish_chat(bl_xfinish_t f);
const char *bl_xfinish_anthropic(bl_xfinish_t f);
/* A data: URL split into media type and base64 payload; false if not one. */
bool bl_xdata_url(const char *url, bl_str_t *media_type, bl_str_t *b64);
/* Dump compactly in insertion order and append to out. */
int bl_xdump(json_t *v, bl_buf_t *out);

#endif
