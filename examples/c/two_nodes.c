/*
 * Two ringwire nodes in one process, on loopback: node A dials node B, each sends a batch of
 * messages to the other on two channels, every byte is checked, B answers a request from A,
 * and everything is freed. Waits for messages with poll(2) on the channel's eventfd.
 *
 * Build and run: `make c-example` (also under AddressSanitizer).
 */
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringwire.h"

#define CHECK(call)                                                                            \
    do {                                                                                       \
        ringwire_result rc_ = (call);                                                          \
        if (rc_ != RINGWIRE_RESULT_OK) {                                                       \
            fail(#call, rc_);                                                                  \
        }                                                                                      \
    } while (0)

#define EXPECT(cond)                                                                           \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond);                \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)

enum { MESSAGES = 16, CHANNELS = 2 };
static const uint8_t CHANNEL_IDS[CHANNELS] = {0x40, 0x41};

static void fail(const char *what, ringwire_result rc) {
    char text[128], detail[1025];
    size_t n;
    if (ringwire_error_message(rc, text, sizeof text, &n) != RINGWIRE_RESULT_OK) {
        strcpy(text, "?");
    }
    if (ringwire_last_error(detail, sizeof detail, &n) != RINGWIRE_RESULT_OK) {
        detail[0] = 0;
    }
    fprintf(stderr, "%s failed: %u %s (%s)\n", what, (unsigned)rc, text, detail);
    exit(1);
}

/* Deterministic payload i of a sender: length and bytes depend on (from, channel, i). */
static size_t fill(uint8_t *buf, int from, int ch, int i) {
    size_t len = 1 + (size_t)((i * 977 + ch * 131 + from * 7) % 3000);
    for (size_t k = 0; k < len; k++) {
        buf[k] = (uint8_t)(k * 31 + (size_t)i * 7 + (size_t)ch * 3 + (size_t)from);
    }
    return len;
}

static ringwire_node *start(uint8_t seed) {
    ringwire_config *cfg = NULL;
    uint8_t key[32];
    memset(key, seed, sizeof key);
    CHECK(ringwire_config_new(&cfg));
    CHECK(ringwire_config_set_key_seed(cfg, key));
    CHECK(ringwire_config_set_network(cfg, "c-example"));
    CHECK(ringwire_config_set_listen(cfg, "127.0.0.1:0"));
    CHECK(ringwire_config_set_shards(cfg, 1));
    ringwire_node *node = NULL;
    CHECK(ringwire_node_start(cfg, &node));
    ringwire_config_free(cfg);
    return node;
}

static void send_all(ringwire_channel *ch, int from, int chi, ringwire_node_id to) {
    static uint8_t bufs[MESSAGES][3000];
    ringwire_envelope envs[MESSAGES];
    memset(envs, 0, sizeof envs);
    for (int i = 0; i < MESSAGES; i++) {
        envs[i].to = RINGWIRE_TO_PEER;
        envs[i].peer = to;
        envs[i].payload = bufs[i];
        envs[i].payload_len = fill(bufs[i], from, chi, i);
    }
    size_t queued = 0;
    CHECK(ringwire_channel_send(ch, envs, MESSAGES, 5000, &queued));
    EXPECT(queued == MESSAGES);
}

static void receive_all(ringwire_channel *ch, int from, int chi, ringwire_node_id sender) {
    int fd = -1;
    CHECK(ringwire_channel_fd(ch, &fd));
    uint8_t want[3000];
    int got = 0;
    while (got < MESSAGES) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        EXPECT(poll(&p, 1, 5000) == 1);
        ringwire_message views[8];
        ringwire_batch *batch = NULL;
        size_t n = 0;
        CHECK(ringwire_channel_recv(ch, views, 8, 0, &batch, &n));
        for (size_t k = 0; k < n; k++) {
            size_t len = fill(want, from, chi, got);
            EXPECT(views[k].channel == CHANNEL_IDS[chi]);
            EXPECT(memcmp(views[k].peer.bytes, sender.bytes, 20) == 0);
            EXPECT(views[k].payload_len == len);
            EXPECT(memcmp(views[k].payload, want, len) == 0);
            got++;
        }
        ringwire_batch_release(batch);
    }
}

/* Receives one request on `arg` (a channel) and answers it with its bytes reversed. */
static void *answer_one(void *arg) {
    ringwire_channel *ch = arg;
    ringwire_message views[1];
    ringwire_batch *batch = NULL;
    size_t n = 0;
    CHECK(ringwire_channel_recv(ch, views, 1, 5000, &batch, &n));
    EXPECT(n == 1 && views[0].request_id != 0);
    uint8_t out[64];
    size_t len = views[0].payload_len;
    EXPECT(len <= sizeof out);
    for (size_t k = 0; k < len; k++) {
        out[k] = views[0].payload[len - 1 - k];
    }
    uint64_t rid = views[0].request_id;
    ringwire_batch_release(batch);
    CHECK(ringwire_channel_respond(ch, rid, out, len));
    EXPECT(ringwire_channel_respond(ch, rid, out, len) == RINGWIRE_RESULT_UNKNOWN_REQUEST);
    return NULL;
}

int main(void) {
    printf("ringwire C ABI version %u\n", ringwire_abi_version());
    ringwire_node *a = start(1), *b = start(2);

    ringwire_channel *ca[CHANNELS], *cb[CHANNELS];
    for (int c = 0; c < CHANNELS; c++) {
        CHECK(ringwire_node_open_channel(a, CHANNEL_IDS[c], 1, 64, 1 << 20, &ca[c]));
        CHECK(ringwire_node_open_channel(b, CHANNEL_IDS[c], 1, 64, 1 << 20, &cb[c]));
    }

    ringwire_node_id ida, idb, dialed;
    CHECK(ringwire_node_get_id(a, &ida));
    CHECK(ringwire_node_get_id(b, &idb));
    char addr[64], hex[41];
    size_t n;
    CHECK(ringwire_node_listen_addr(b, addr, sizeof addr, &n));
    CHECK(ringwire_node_get_id_hex(b, hex, sizeof hex, &n));
    EXPECT(n == 40);
    printf("A dials B %s@%s\n", hex, addr);
    CHECK(ringwire_node_dial(a, addr, &idb, &dialed));
    EXPECT(memcmp(dialed.bytes, idb.bytes, 20) == 0);

    ringwire_node_stats stats;
    CHECK(ringwire_node_get_stats(b, &stats));
    EXPECT(stats.accepted == 1);

    ringwire_peer_event ev[4];
    CHECK(ringwire_node_poll_events(b, ev, 4, 5000, &n));
    EXPECT(n == 1 && ev[0].kind == RINGWIRE_PEER_EVENT_KIND_UP);
    EXPECT(memcmp(ev[0].peer.bytes, ida.bytes, 20) == 0);

    for (int c = 0; c < CHANNELS; c++) {
        send_all(ca[c], 0, c, idb);
        send_all(cb[c], 1, c, ida);
    }
    for (int c = 0; c < CHANNELS; c++) {
        receive_all(cb[c], 0, c, ida);
        receive_all(ca[c], 1, c, idb);
    }
    printf("exchanged %d messages each way on %d channels, bytes checked\n", MESSAGES, CHANNELS);

    /* A asks B on channel 0; a thread of B's answers with the bytes reversed. */
    pthread_t responder;
    EXPECT(pthread_create(&responder, NULL, answer_one, cb[0]) == 0);
    const char *ask = "ping?";
    ringwire_message resp;
    ringwire_batch *rb = NULL;
    CHECK(ringwire_channel_request(ca[0], &idb, (const uint8_t *)ask, strlen(ask), 5000, &resp,
                                   &rb));
    EXPECT(resp.payload_len == 5 && memcmp(resp.payload, "?gnip", 5) == 0);
    ringwire_batch_release(rb);
    EXPECT(pthread_join(responder, NULL) == 0);
    printf("request answered\n");

    CHECK(ringwire_node_disconnect(a, &idb));
    CHECK(ringwire_node_stop(a, 2000));
    EXPECT(ringwire_node_stop(a, 2000) == RINGWIRE_RESULT_STOPPED);
    for (int c = 0; c < CHANNELS; c++) {
        ringwire_channel_free(ca[c]);
        ringwire_channel_free(cb[c]);
    }
    ringwire_node_free(a);
    ringwire_node_free(b);
    ringwire_node_free(NULL);
    printf("ok\n");
    return 0;
}
