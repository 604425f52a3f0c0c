/*
 * Grammar-constrained sampling: the local model can only write text a JSON
 * Schema (or "any JSON object") accepts.
 *
 * A schema is compiled (schema.c) into a context-free grammar over bytes
 * (bl_grammar_t: rules of alternatives of byte classes and rule references).
 * A matcher (match.c) runs it as a pushdown automaton: its state is the set
 * of parse stacks still alive, and each (state, byte) transition is memoised,
 * so after warm-up the automaton is a lazily built DFA. The mask (vtrie.c)
 * walks a byte trie of the vocabulary (built once per model) with that DFA,
 * skipping every subtree whose prefix the grammar rejects, and sets the
 * logits of tokens it cannot take to -INFINITY.
 */
#ifndef BL_ENGINE_GRAMMAR_H
#define BL_ENGINE_GRAMMAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ballast/engine.h>

typedef struct bl_grammar bl_grammar_t;
typedef struct bl_gmatch bl_gmatch_t;
typedef struct bl_vtrie bl_vtrie_t;

/* ---- grammars ------------------------------------------------------------ */

/* Compile a JSON Schema (the subset engine.h documents at
 * bl_json_schema_check). BL_EINVAL with the reason in err, e.g.
 * "unsupported JSON Schema construct 'pattern' at #/properties/zip". */
int bl_grammar_from_schema(const char *schema, size_t len, bl_grammar_t **out, char *err,
                           size_t errlen);
/* Any JSON object (response_format json_object). */
int bl_grammar_json_object(bl_grammar_t **out);
void bl_grammar_free(bl_grammar_t *g);

/* ---- matching ------------------------------------------------------------ */

/* A matcher at the start of g's language; g must outlive it. */
int bl_gmatch_new(const bl_grammar_t *g, bl_gmatch_t **out);
void bl_gmatch_free(bl_gmatch_t *m);
/* Whether bytes can come next (the state does not change). */
bool bl_gmatch_accepts(bl_gmatch_t *m, const void *bytes, size_t n);
/* Consume bytes; BL_EINVAL (state unchanged) when they are not accepted. */
int bl_gmatch_advance(bl_gmatch_t *m, const void *bytes, size_t n);
/* A whole value has been produced (it may still go on, e.g. a number). */
bool bl_gmatch_complete(const bl_gmatch_t *m);
/* Complete and nothing more is accepted. */
bool bl_gmatch_done(const bl_gmatch_t *m);

/* ---- the vocabulary mask ------------------------------------------------- */

/* A byte trie over token pieces. piece[i] / len[i] is token i's text
 * (len 0: never allowed), eog[i] != 0 marks end-of-generation tokens
 * (allowed exactly when the matcher is complete). eog may be NULL. */
int bl_vtrie_new(uint32_t n_vocab, const char *const *piece, const uint32_t *len,
                 const uint8_t *eog, bl_vtrie_t **out);
void bl_vtrie_free(bl_vtrie_t *t);
uint32_t bl_vtrie_n_vocab(const bl_vtrie_t *t);
size_t bl_vtrie_n_nodes(const bl_vtrie_t *t);
/* Set logits[i] (n_logits of them) to -INFINITY for every token the matcher
 * cannot take next; ids at or past the trie's vocabulary are masked too.
 * Returns how many tokens stay allowed, or a negative code. */
int bl_gmatch_mask(bl_gmatch_t *m, const bl_vtrie_t *t, float *logits, size_t n_logits);
/* The token's piece as the trie holds it (for advancing after sampling). */
int bl_vtrie_piece(const bl_vtrie_t *t, bl_token_t id, const char **p, size_t *n);
bool bl_vtrie_is_eog(const bl_vtrie_t *t, bl_token_t id);

/* The model's trie, built on first use and kept until bl_model_free. */
int bl_model_vtrie(bl_model_t *m, const bl_vtrie_t **out);

#endif
