/*
 * Echo server on libwebsockets (Debian's libwebsockets-dev), for Benchmarks/compare.sh, written the
 * way lws's minimal examples are: one protocol callback that collects each message (lws hands it over
 * in fragments), queues it, asks for a writeable callback and writes one message per callback.
 * Usage: lws-echo <port> [--deflate]   (--deflate: the permessage-deflate extension)
 */
#include <libwebsockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct message {
    struct message *next;
    size_t length;
    int binary;
    unsigned char *bytes; /* LWS_PRE bytes of headroom, then the payload */
};

struct session {
    struct message *head, *tail; /* complete messages waiting to be echoed */
    struct message *partial;     /* the message being received */
    size_t capacity;
};

static volatile int stopping;

static void drop_all(struct session *s) {
    while (s->head) {
        struct message *m = s->head;
        s->head = m->next;
        free(m->bytes);
        free(m);
    }
    s->tail = NULL;
    if (s->partial) {
        free(s->partial->bytes);
        free(s->partial);
        s->partial = NULL;
    }
}

static int append(struct session *s, const void *in, size_t len, int binary) {
    if (!s->partial) {
        s->partial = calloc(1, sizeof *s->partial);
        if (!s->partial) return -1;
        s->capacity = len > 4096 ? len : 4096;
        s->partial->bytes = malloc(LWS_PRE + s->capacity);
        if (!s->partial->bytes) return -1;
        s->partial->binary = binary;
    }
    struct message *m = s->partial;
    if (m->length + len > s->capacity) {
        size_t wanted = s->capacity * 2;
        while (wanted < m->length + len) wanted *= 2;
        unsigned char *grown = realloc(m->bytes, LWS_PRE + wanted);
        if (!grown) return -1;
        m->bytes = grown;
        s->capacity = wanted;
    }
    memcpy(m->bytes + LWS_PRE + m->length, in, len);
    m->length += len;
    return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
    struct session *s = user;
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        memset(s, 0, sizeof *s);
        break;
    case LWS_CALLBACK_RECEIVE:
        if (append(s, in, len, lws_frame_is_binary(wsi))) return -1;
        if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
            struct message *m = s->partial;
            s->partial = NULL;
            if (s->tail) s->tail->next = m; else s->head = m;
            s->tail = m;
            lws_callback_on_writable(wsi);
        }
        break;
    case LWS_CALLBACK_SERVER_WRITEABLE: {
        struct message *m = s->head;
        if (!m) break;
        int kind = m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT;
        if (lws_write(wsi, m->bytes + LWS_PRE, m->length, kind) < (int)m->length) return -1;
        s->head = m->next;
        if (!s->head) s->tail = NULL;
        free(m->bytes);
        free(m);
        if (s->head) lws_callback_on_writable(wsi);
        break;
    }
    case LWS_CALLBACK_CLOSED:
        drop_all(s);
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {"echo", callback, sizeof(struct session), 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static const struct lws_extension extensions[] = {
    {"permessage-deflate", lws_extension_callback_pm_deflate, "permessage-deflate; client_max_window_bits"},
    {NULL, NULL, NULL},
};

static void on_signal(int signal_number) {
    (void)signal_number;
    stopping = 1;
}

int main(int argc, char **argv) {
    int port = -1, deflate = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--deflate")) deflate = 1;
        else port = atoi(argv[i]);
    }
    if (port < 0) {
        fprintf(stderr, "usage: lws-echo <port> [--deflate]\n");
        return 2;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    lws_set_log_level(LLL_ERR, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = port;
    info.iface = "127.0.0.1";
    info.protocols = protocols;
    info.extensions = deflate ? extensions : NULL;
    info.count_threads = 1;
    info.fd_limit_per_thread = 0;
    struct lws_context *context = lws_create_context(&info);
    if (!context) {
        fprintf(stderr, "lws-echo: could not create the context\n");
        return 1;
    }
    printf("PORT %d\n", port);
    fflush(stdout);
    while (!stopping && lws_service(context, 0) >= 0) {
    }
    lws_context_destroy(context);
    return 0;
}
