/* activator/gateway/audit_stream.c: a streamed answer, assembled for the
 * audit. When a namespace keeps bodies, each chunk the caller gets is
 * folded in here (content, text and refusal appended per choice, tool
 * calls by their index, finish reasons, the usage), within AUDIT_BODY_MAX
 * bytes of text; at the end it becomes the record's responseBody, shaped
 * like the non-streamed answer ("chat.completion" or "text_completion"),
 * so that a reader of `fnbox llm log` sees one answer either way. */
#define _GNU_SOURCE
#include "activator/gateway/policy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define ASM_PIECES_MAX          64      /* texts kept: choices x fields, tool calls x fields */
#define ASM_CHOICES_MAX         16      /* choice indices kept (n > 16 is not kept whole) */
#define ASM_TOOLS_MAX           16      /* tool calls per choice */
#define ASM_FIELD_MAX           24      /* a delta key's bytes */
#define ASM_ID_MAX              128

typedef enum PieceKind {
        PIECE_MESSAGE,                  /* a string field of the delta (chat) or the choice's text (completions) */
        PIECE_FINISH,                   /* the choice's finish_reason */
        PIECE_TOOL,                     /* a field of a tool call: id, type, name, arguments */
} PieceKind;

typedef struct Piece {
        PieceKind kind;
        unsigned choice, tool;
        char field[ASM_FIELD_MAX + 1];
        char *buf;
        size_t len, cap;
} Piece;

struct AuditStream {
        Piece pieces[ASM_PIECES_MAX];
        size_t n;
        size_t bytes;                   /* text kept, over every piece */
        bool chat, cut;
        char id[ASM_ID_MAX + 1], model[ASM_ID_MAX + 1];
        json_t *usage;
};

/* ---- folding chunks in --------------------------------------------------------- */

static Piece *piece_get(AuditStream *s, PieceKind kind, unsigned choice, unsigned tool, const char *field) {
        if (strlen(field) > ASM_FIELD_MAX)
                return NULL;
        for (size_t i = 0; i < s->n; i++) {
                Piece *p = &s->pieces[i];
                if (p->kind == kind && p->choice == choice && p->tool == tool && strcmp(p->field, field) == 0)
                        return p;
        }
        if (s->n == ASM_PIECES_MAX) {
                s->cut = true;
                return NULL;
        }
        Piece *p = &s->pieces[s->n++];
        *p = (Piece) { .kind = kind, .choice = choice, .tool = tool };
        strcpy(p->field, field);
        return p;
}

/* How much of a UTF-8 text of n bytes fits in max without cutting a
 * character in two. */
static size_t utf8_fit(const char *t, size_t n, size_t max) {
        if (n <= max)
                return n;
        size_t k = max;
        for (unsigned back = 0; back < 3 && k > 0 && ((unsigned char) t[k] & 0xc0) == 0x80; back++)
                k--;
        return k;
}

/* Append (or, with once, set when still empty) a text, within the byte budget. */
static void piece_add(AuditStream *s, Piece *p, const char *t, size_t n, bool once) {
        if (!p || n == 0 || (once && p->len > 0))
                return;
        size_t k = utf8_fit(t, n, AUDIT_BODY_MAX - s->bytes);
        if (k < n)
                s->cut = true;
        if (k == 0)
                return;
        if (p->len + k > p->cap) {
                size_t cap = p->cap ? p->cap : 256;
                while (cap < p->len + k)
                        cap *= 2;
                char *b = realloc(p->buf, cap);
                if (!b) {
                        s->cut = true;
                        return;
                }
                p->buf = b;
                p->cap = cap;
        }
        memcpy(p->buf + p->len, t, k);
        p->len += k;
        s->bytes += k;
}

static void add_string(AuditStream *s, PieceKind kind, unsigned choice, unsigned tool, const char *field,
                       const json_t *v, bool once) {
        if (json_is_string(v))
                piece_add(s, piece_get(s, kind, choice, tool, field), json_string_value(v), json_string_length(v), once);
}

static void fold_tools(AuditStream *s, unsigned choice, const json_t *tools) {
        size_t i;
        const json_t *tc;
        json_array_foreach(tools, i, tc) {
                const json_t *ix = json_object_get(tc, "index"), *fn = json_object_get(tc, "function");
                json_int_t t = json_is_integer(ix) ? json_integer_value(ix) : (json_int_t) i;
                if (t < 0 || t >= ASM_TOOLS_MAX) {
                        s->cut = true;
                        continue;
                }
                add_string(s, PIECE_TOOL, choice, (unsigned) t, "id", json_object_get(tc, "id"), true);
                add_string(s, PIECE_TOOL, choice, (unsigned) t, "type", json_object_get(tc, "type"), true);
                add_string(s, PIECE_TOOL, choice, (unsigned) t, "name", json_object_get(fn, "name"), true);
                add_string(s, PIECE_TOOL, choice, (unsigned) t, "arguments", json_object_get(fn, "arguments"), false);
        }
}

static void fold_choice(AuditStream *s, const json_t *ch, size_t pos) {
        const json_t *ix = json_object_get(ch, "index"), *delta = json_object_get(ch, "delta"), *v;
        json_int_t c = json_is_integer(ix) ? json_integer_value(ix) : (json_int_t) pos;
        const char *key;
        if (c < 0 || c >= ASM_CHOICES_MAX) {
                s->cut = true;
                return;
        }
        if (json_is_object(delta)) {
                s->chat = true;
                json_object_foreach((json_t *) delta, key, v) {
                        if (strcmp(key, "tool_calls") == 0 && json_is_array(v))
                                fold_tools(s, (unsigned) c, v);
                        else if (strcmp(key, "role") != 0)
                                add_string(s, PIECE_MESSAGE, (unsigned) c, 0, key, v, false);
                }
        }
        add_string(s, PIECE_MESSAGE, (unsigned) c, 0, "text", json_object_get(ch, "text"), false);
        add_string(s, PIECE_FINISH, (unsigned) c, 0, "finish_reason", json_object_get(ch, "finish_reason"), true);
}

static void copy_once(char *dst, size_t size, const json_t *v) {
        const char *t = json_string_value(v);
        if (!dst[0] && t)
                snprintf(dst, size, "%.*s", (int) utf8_fit(t, strlen(t), size - 1), t);
}

void audit_stream_add(AuditRecord *rec, const json_t *chunk) {
        if (!rec || !rec->bodies || !json_is_object(chunk))
                return;
        AuditStream *s = rec->stream_body;
        if (!s && !(s = rec->stream_body = calloc(1, sizeof *s)))
                return;
        const json_t *choices = json_object_get(chunk, "choices"), *usage = json_object_get(chunk, "usage"), *ch;
        size_t i;
        copy_once(s->id, sizeof s->id, json_object_get(chunk, "id"));
        copy_once(s->model, sizeof s->model, json_object_get(chunk, "model"));
        if (json_is_object(usage)) {
                json_decref(s->usage);
                s->usage = json_deep_copy(usage);
        }
        json_array_foreach(choices, i, ch)
                if (json_is_object(ch))
                        fold_choice(s, ch, i);
}

/* ---- the answer --------------------------------------------------------------------- */

static json_t *text_json(const Piece *p) {
        json_t *j = json_stringn(p->buf ? p->buf : "", p->len);
        return j ? j : json_string("");         /* a NUL inside: not kept */
}

static json_t *choice_json(const AuditStream *s, unsigned c) {
        json_t *ch = json_pack("{s:i}", "index", (int) c);
        json_t *msg = s->chat ? json_pack("{s:s}", "role", "assistant") : NULL, *tools = NULL, *finish = NULL;
        json_t *into = s->chat ? msg : ch;
        if (!ch || (s->chat && !msg))
                goto fail;
        for (size_t i = 0; i < s->n; i++) {
                const Piece *p = &s->pieces[i];
                if (p->choice != c)
                        continue;
                if (p->kind == PIECE_FINISH)
                        finish = text_json(p);
                else if (p->kind == PIECE_MESSAGE)
                        json_object_set_new(into, p->field, text_json(p));
        }
        for (unsigned t = 0; s->chat && t < ASM_TOOLS_MAX; t++) {
                json_t *call = NULL, *fn = NULL;
                for (size_t i = 0; i < s->n; i++) {
                        const Piece *p = &s->pieces[i];
                        if (p->kind != PIECE_TOOL || p->choice != c || p->tool != t)
                                continue;
                        if (!call && !(call = json_object()))
                                goto fail;
                        bool in_fn = strcmp(p->field, "name") == 0 || strcmp(p->field, "arguments") == 0;
                        if (in_fn && !fn && (!(fn = json_object()) || json_object_set_new(call, "function", fn) < 0))
                                goto fail;
                        json_object_set_new(in_fn ? fn : call, p->field, text_json(p));
                }
                if (call && ((!tools && !(tools = json_array())) || json_array_append_new(tools, call) < 0))
                        goto fail;
        }
        if (tools)
                json_object_set_new(msg, "tool_calls", tools);
        if (msg)
                json_object_set_new(ch, "message", msg);
        json_object_set_new(ch, "finish_reason", finish ? finish : json_null());
        return ch;
fail:
        json_decref(ch);
        json_decref(msg);
        json_decref(tools);
        json_decref(finish);
        return NULL;
}

/* The assembled answer as JSON text (malloc'd), or NULL (out of memory). */
static char *stream_render(const AuditStream *s) {
        bool seen[ASM_CHOICES_MAX] = {};
        for (size_t i = 0; i < s->n; i++)
                seen[s->pieces[i].choice] = true;
        json_t *choices = json_array();
        for (unsigned c = 0; choices && c < ASM_CHOICES_MAX; c++)
                if (seen[c] && json_array_append_new(choices, choice_json(s, c)) < 0) {
                        json_decref(choices);
                        choices = NULL;
                }
        json_t *o = choices ? json_pack("{s:s, s:s, s:s, s:o}", "id", s->id, "object",
                                        s->chat ? "chat.completion" : "text_completion", "model", s->model,
                                        "choices", choices)
                            : NULL;
        if (o && s->usage)
                json_object_set(o, "usage", s->usage);
        char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        return text;
}

static void stream_free(AuditStream *s) {
        if (!s)
                return;
        for (size_t i = 0; i < s->n; i++)
                free(s->pieces[i].buf);
        json_decref(s->usage);
        free(s);
}

int audit_stream_finish(AuditRecord *rec) {
        AuditStream *s = rec ? rec->stream_body : NULL;
        if (!s)
                return 0;
        rec->stream_body = NULL;
        int r = 0;
        if (!rec->response_body) {
                rec->response_body = stream_render(s);
                r = rec->response_body ? 0 : -ENOMEM;
                rec->response_body_cut = rec->response_body && s->cut;
        }
        stream_free(s);
        return r;
}

void audit_record_clear(AuditRecord *rec) {
        if (!rec)
                return;
        stream_free(rec->stream_body);
        rec->stream_body = NULL;
        free(rec->request_body);
        free(rec->response_body);
        rec->request_body = rec->response_body = NULL;
}
