/* session — the switchboard.v1 session over WebSocket-like transports, as
 * one sans-I/O state machine with a client role (the browser Socket) and a
 * server role (one relay connection). docs/protocol.md §12.
 *
 * It owns everything between "bytes arrived" and "bytes to write": the
 * handshake (the server speaks first; a client writes nothing of its own
 * before the server's greeting, so a server that does not speak
 * switchboard.v1 never sees a byte the application did not send), the
 * framed/plain verdict, the bounded outbox (sb_outbox: overflow policies,
 * drop reports, per-channel sequence numbers), the inbox (sb_inbox: dedup,
 * order, cumulative acks on a timer), resume in both directions across
 * transports, batching and the compress-or-not decision on the shared
 * deflate window (sb_batch) with the guarantee that no frame written
 * exceeds the caps the peer announced, requests with ids and deadlines,
 * the heartbeat verdict and, in the client role, the reconnect life cycle
 * (sb_conn, sb_backoff).
 *
 * The glue owns the transport and one timer. It reports what happened
 * (transport opened, bytes arrived, transport closed, network/visibility
 * changes, the transport's unsent byte count) with the current time, calls
 * sb_session_flush at the end of a task and sb_session_tick when the timer
 * fires, and then drains events with sb_session_next_event until it
 * returns 0: bytes to write, a transport to open or close, messages,
 * responses, drops, state changes. Nothing is written except from
 * sb_session_flush and sb_session_tick, so a host can commit what it
 * received before any ack leaves (the relay does), and from the client's
 * sb_session_request (a request is written at once).
 *
 * Event data (sb_session_event_data) stays valid until the next call that
 * takes the session as non-const. */
#ifndef SB_SESSION_H
#define SB_SESSION_H

#include "switchboard.h"

/* The WebSocket subprotocol of this session. */
#define SB_SESSION_PROTOCOL "switchboard.v1"

/* Room a client leaves above its payload cap for the sender a server stamps
 * on a relayed message (sb_session_relay): 1 length byte + up to 255. */
#define SB_SESSION_STAMP_MAX 256
/* The server's own channel (presence, notices); a client sends only
 * requests to the server itself there. */
#define SB_SESSION_SYSTEM_CHANNEL 1

enum sb_session_role {
    SB_SESSION_CLIENT = 0,
    SB_SESSION_SERVER = 1
};

/* Options (sb_session_set), all doubles; set before sb_session_start
 * (client) or sb_session_attach (server). Defaults in brackets. */
enum sb_session_opt {
    SB_SO_CONNECT_TIMEOUT = 0,  /* client: socket + handshake must finish within [10000] ms */
    SB_SO_HELLO_TIMEOUT = 1,    /* client: no greeting within this (and half the connect timeout)
                                 * on an open socket = plain [3000];
                                 * server: the client's hello must come within [10000] ms */
    SB_SO_PING_INTERVAL = 2,    /* client: ping after this much silence, 0 = no heartbeat [25000] */
    SB_SO_PING_TIMEOUT = 3,     /* client: dead when nothing arrives this long after a ping [10000] */
    SB_SO_IDLE_TIMEOUT = 4,     /* server: a transport silent this long is dropped, 0 = never [60000] */
    SB_SO_SESSION_TTL = 5,      /* server: a detached session is closed after [300000] ms */
    SB_SO_RECONNECT = 6,        /* client: 0 = one transport only [1] */
    SB_SO_BACKOFF_MIN = 7,      /* [250] */
    SB_SO_BACKOFF_MAX = 8,      /* [30000] */
    SB_SO_BACKOFF_FACTOR = 9,   /* [2] */
    SB_SO_MAX_ATTEMPTS = 10,    /* failed attempts in a row before giving up, 0 = never [0] */
    SB_SO_QUEUE_MAX_COUNT = 11, /* outbox messages (queued + unacked) [10000] */
    SB_SO_QUEUE_MAX_BYTES = 12, /* outbox payload bytes [16 MiB] */
    SB_SO_QUEUE_POLICY = 13,    /* enum sb_queue_policy [client REJECT, server DROP_OLDEST] */
    SB_SO_BATCH_MAX_FRAMES = 14, /* frames per transport message [512] */
    SB_SO_BATCH_MAX_BYTES = 15, /* frame bytes per transport message before compression [256 KiB] */
    SB_SO_BATCH_DELAY = 16,     /* wait this long for more frames, ms; 0 = what one task sent
                                 * (a client's full batches leave before: SB_SO_EARLY_BATCH) [0] */
    SB_SO_COMPRESS = 17,        /* offer/accept the shared deflate window [1] */
    SB_SO_COMPRESS_ABOVE = 18,  /* smaller batches are not compressed [96] */
    SB_SO_COMPRESS_LEVEL = 19,  /* zlib level [6] */
    SB_SO_MAX_PAYLOAD = 20,     /* largest frame payload we accept, announced to the peer [1 MiB] */
    SB_SO_MAX_MESSAGE = 21,     /* largest transport message we accept, also after inflating [8 MiB] */
    SB_SO_MAX_FRAMES = 22,      /* most frames in one transport message we accept [4096] */
    SB_SO_ACK_DELAY = 23,       /* received messages wait at most this long for an ack, ms
                                 * [client 100, server 20]; a client's go sooner with
                                 * anything else it writes (acks ride along) */
    SB_SO_FRAMED = 24,          /* client: offer switchboard.v1 at all [1] */
    SB_SO_MAX_REQUESTS = 25,    /* requests waiting for an answer [4096] */
    SB_SO_MAX_CHANNELS = 26,    /* channels with sequence state, each direction [256] */
    SB_SO_HIGH_WATER = 27,      /* nothing more is written while the transport buffers more [4 MiB] */
    SB_SO_REFRESH_AUTH = 28,    /* client: 1 = the host asks for fresh credentials (URL, hello)
                                 * before every attempt, so a close with SB_CLOSE_AUTH reconnects
                                 * with backoff; 0 = SB_CLOSE_AUTH ends the session [0] */
    SB_SO_RATE_MSGS = 29,       /* server: frames a second the client may send on a transport
                                 * (batches count their frames), 0 = no limit [1000] */
    SB_SO_RATE_MSGS_BURST = 30, /* server: frames it may send at once [10000] */
    SB_SO_RATE_BYTES = 31,      /* server: frame bytes a second (after inflating), 0 = no limit [8 MiB] */
    SB_SO_RATE_BYTES_BURST = 32, /* server: frame bytes at once [16 MiB] */
    SB_SO_RATE_TOLERANCE = 33,  /* server: over a rate the host is told to stop reading
                                 * (SB_SEV_PAUSE); a client further in debt than this many ms
                                 * of its rate is closed (SB_CLOSE_RATE_LIMITED) [10000] */
    SB_SO_STALL_TIMEOUT = 34,   /* server: a transport holding the high-water mark or more unsent
                                 * (sb_session_set_buffered) this long is closed with
                                 * SB_CLOSE_TRY_AGAIN, the session kept; 0 = never [30000] */
    SB_SO_ACK_RIDE = 35,        /* client: 1 = pending acks go with anything else it writes,
                                 * 0 = they wait their SB_SO_ACK_DELAY: a shared Socket's
                                 * leading tab, whose acks must not overtake its posts to the
                                 * other tabs [1] */
    SB_SO_EARLY_BATCH = 36,     /* client: 1 = a batch that the messages queued since the last
                                 * write fill is written inside the sb_session_send that
                                 * filled it (a burst pipelines; the rest waits for the
                                 * flush), 0 = at the flush: a shared Socket's leading tab,
                                 * which snapshots before each write [1] */
    SB_SO_TRIM_AFTER = 37,      /* server: ms a session may sit unused before its scratch
                                 * buffers (events, batches, frames read and written) go
                                 * back to the allocator; 0 = kept [1000]. A client keeps
                                 * them (a page has one session; its core links no trim) */
    SB_SO_COUNT_ = 38
};

/* States: the client's are sb_conn's (conn.h); a server session is
 * CONNECTING until the client's hello was accepted, OPEN while a transport
 * is attached, RECONNECTING while detached (waiting for the client to come
 * back), CLOSED at the end. */
enum sb_session_state {
    SB_SESSION_IDLE = 0,
    SB_SESSION_CONNECTING = 1,
    SB_SESSION_OPEN = 2,
    SB_SESSION_CLOSING = 3,
    SB_SESSION_CLOSED = 4,
    SB_SESSION_RECONNECTING = 5
};

enum sb_session_mode {
    SB_SESSION_MODE_NONE = 0,   /* not decided yet */
    SB_SESSION_MODE_FRAMED = 1, /* the peer speaks switchboard.v1 */
    SB_SESSION_MODE_PLAIN = 2   /* any other server: messages as they are */
};

/* Event types (sb_session_next_event). Fields in sb_session_event. */
enum sb_session_event_type {
    SB_SEV_NONE = 0,
    SB_SEV_WRITE = 1,          /* write data to the transport; flags & SB_SEV_F_TEXT: as text */
    SB_SEV_CONNECT = 2,        /* client: open a new transport; flags & SB_SEV_F_OFFER_FRAMED:
                                * offer SB_SESSION_PROTOCOL first; value = attempt */
    SB_SEV_DISCONNECT = 3,     /* close the current transport with code; data = reason text */
    SB_SEV_STATE = 4,          /* state changed: value = enum sb_session_state, code = reason (conn.h) */
    SB_SEV_OPEN = 5,           /* the session is usable; value = enum sb_session_mode */
    SB_SEV_MESSAGE = 6,        /* an application message: channel, seq, flags (BINARY), data;
                                * from a server's sb_session_relay: value = its offset, aux =
                                * the sender's length (those bytes follow the data) */
    SB_SEV_RESPONSE = 7,       /* client: the answer to request id: flags (BINARY), data */
    SB_SEV_REQUEST_FAILED = 8, /* client: request id failed: code = sb_err; with SB_SEV_F_REMOTE
                                * data = the server's error payload ({"code","message"} JSON) */
    SB_SEV_DROP = 9,           /* outbox message id removed unsent or unacked: code = sb_err,
                                * seq = enum sb_session_drop_reason, flags (BINARY), data = payload */
    SB_SEV_ERROR = 10,         /* something the app should hear of: code = sb_err, data = text */
    SB_SEV_RECONNECTING = 11,  /* client: waiting value ms before attempt seq; code = reason */
    SB_SEV_CLOSED = 12,        /* final: nothing more will happen */
    SB_SEV_DIRTY = 13,         /* persistent state changed (queued with the change): serialize
                                * after draining, before writing what it caused */
    SB_SEV_HELLO = 14,         /* server: the client's hello; data = its application JSON; the host
                                * answers with sb_session_accept, _takeover or _refuse */
    SB_SEV_REQUEST = 15,       /* server: request id on channel: flags (BINARY), data; answer with
                                * sb_session_respond */
    SB_SEV_PAUSE = 16,         /* server: the client is over a rate limit: read nothing more from
                                * the transport for value ms (what still arrives is charged) */
    SB_SEV_REQUEST_MOVED = 17, /* client: request value (a restored state's id, which a lost
                                * state also gave out) is now request id: its answer comes so */
    SB_SEV_COUNT_ = 18
};

enum sb_session_event_flag {
    SB_SEV_F_TEXT = 0x100,         /* WRITE: a text message (plain mode) */
    SB_SEV_F_OFFER_FRAMED = 0x200, /* CONNECT: offer the subprotocol */
    SB_SEV_F_REMOTE = 0x400        /* REQUEST_FAILED: the peer answered with an error */
};

enum sb_session_drop_reason {
    SB_DROP_OVERFLOW = 0,  /* evicted or refused by the overflow policy */
    SB_DROP_REJECTED = 1,  /* refused under the reject policy (the send failed) */
    SB_DROP_TOO_LARGE = 2, /* over a cap (the queue's, or the peer's frame cap) */
    SB_DROP_EXPIRED = 3    /* its deadline passed before the peer confirmed it */
};

/* Close codes the session writes and reads. */
enum sb_session_close_code {
    SB_CLOSE_NORMAL = 1000,
    SB_CLOSE_GOING_AWAY = 1001,
    SB_CLOSE_PROTOCOL = 1002,      /* bytes that do not decode */
    SB_CLOSE_POLICY = 1008,        /* refused: the client does not come back */
    SB_CLOSE_TOO_BIG = 1009,       /* over a cap */
    SB_CLOSE_TRY_AGAIN = 1013,     /* overloaded: come back later */
    SB_CLOSE_REPLACED = 4000,      /* another transport took this session over: do not come back */
    SB_CLOSE_REPLACING = 4001,     /* client: this transport is being replaced by a new one */
    SB_CLOSE_BAD_SERVER = 4002,    /* client: the server sent bytes we refuse */
    SB_CLOSE_HELLO_TIMEOUT = 4003, /* server: no hello in time */
    SB_CLOSE_IDLE = 4004,          /* server: the transport went silent */
    SB_CLOSE_RATE_LIMITED = 4008,  /* server: the client kept sending past its rate limit */
    SB_CLOSE_AUTH = 4401,          /* server: credentials refused (reason "UNAUTHORIZED: ..."): the
                                    * client does not come back unless SB_SO_REFRESH_AUTH */
    SB_CLOSE_FORBIDDEN = 4403      /* server: the session belongs to another user, or the room is
                                    * not theirs (reason "FORBIDDEN: ..."): do not come back */
};

/* Fixed layout for JS: Uint32Array[8] (code as int32) + Float64 at byte 32. */
SB_LAYOUT typedef struct sb_session_event {
    uint32_t type, channel, seq, id, flags;
    int32_t code;
    uint32_t len, aux; /* MESSAGE: the sender's length, its bytes after the data's */
    double value;
} sb_session_event;

enum sb_session_stat {
    SB_SS_SENT = 0,             /* messages transmitted the first time */
    SB_SS_RETRANSMITS = 1,      /* messages transmitted again on a later transport */
    SB_SS_RECEIVED = 2,         /* messages delivered to the application */
    SB_SS_DUPLICATES = 3,       /* received again and dropped */
    SB_SS_DROPPED = 4,          /* DROP events */
    SB_SS_GAPS = 5,             /* times the peer could not give us everything */
    SB_SS_OPENS = 6,
    SB_SS_QUEUED = 7,           /* outbox depth (queued + unacked) */
    SB_SS_QUEUED_BYTES = 8,
    SB_SS_IN_FLIGHT = 9,        /* transmitted, not yet confirmed */
    SB_SS_REQUESTS_PENDING = 10, /* requests waiting for an answer */
    SB_SS_BYTES_OUT = 11,       /* transport bytes written */
    SB_SS_BYTES_IN = 12,        /* transport bytes read */
    SB_SS_PAYLOAD_BYTES_OUT = 13, /* frame bytes before compression */
    SB_SS_PAYLOAD_BYTES_IN = 14,  /* frame bytes after inflating */
    SB_SS_ATTEMPT = 15,         /* failed attempts since the last good connection */
    SB_SS_RTT = 16,             /* last ping round trip, ms, or -1 */
    SB_SS_TX_SEQ = 17,          /* channel 0: last seq transmitted */
    SB_SS_ACKED_SEQ = 18,       /* channel 0: last seq the peer confirmed */
    SB_SS_RX_SEQ = 19,          /* channel 0: last seq delivered in order */
    SB_SS_LATE_GREETINGS = 20,  /* greetings after the hello timeout: reconnected framed */
    SB_SS_COUNT_ = 21
};

typedef struct sb_session sb_session;

/* role: enum sb_session_role; seed drives jitter and the server's epochs.
 * NULL on bad arguments or no memory. It links the server role;
 * sb_session_create_client is the same for a client without it (what the
 * browser cores export). */
SB_RELAY_EXPORT sb_session *sb_session_create(int role, uint32_t seed);
SB_EXPORT sb_session *sb_session_create_client(uint32_t seed);
SB_EXPORT void sb_session_destroy(sb_session *s);
/* SB_E_INVALID for an unknown option or a value out of range, SB_E_BAD_STATE
 * once started. */
SB_EXPORT int sb_session_set(sb_session *s, int opt, double value);
/* Client, plain mode: a message the server answers, sent as the heartbeat
 * ping (any traffic back counts as life). Without one a plain server gets
 * no heartbeat verdict (browsers cannot send WebSocket pings). */
SB_EXPORT int sb_session_set_plain_ping(sb_session *s, const uint8_t *text, uint32_t n);
/* Client: application JSON carried by the hello (at most 64 KiB), e.g.
 * the relay's room, user and token. */
SB_EXPORT int sb_session_set_hello(sb_session *s, const uint8_t *json, uint32_t n);
/* Server: the id this session is known by (1..64 bytes, chosen by the host
 * before sb_session_accept). Client: the id to resume (from saved state). */
SB_EXPORT int sb_session_set_id(sb_session *s, const uint8_t *id, uint32_t n);
/* The session id (bytes at sb_session_out), 0 before one is known. Server,
 * while CONNECTING after SB_SEV_HELLO: the id the client asked to resume. */
SB_EXPORT int sb_session_get_id(sb_session *s);
/* The whole persistent state (id, epoch, outbox, inbox) as bytes at
 * sb_session_out; returns the length. */
SB_EXPORT int sb_session_serialize(sb_session *s);
/* Load a serialized state into a session that has not started (same or
 * larger caps). A server session is then detached (RECONNECTING, the
 * session TTL running from now_ms) until sb_session_takeover.
 * SB_E_CORRUPT, SB_E_BAD_VERSION, SB_E_TOO_LARGE, SB_E_BAD_STATE. */
SB_EXPORT int sb_session_restore(sb_session *s, const uint8_t *blob, uint32_t n, double now_ms);
SB_EXPORT const uint8_t *sb_session_out(const sb_session *s);

/* ---- transport events ---------------------------------------------------- */

/* Client: begin the first attempt (SB_SEV_CONNECT follows). */
SB_EXPORT int sb_session_start(sb_session *s, double now_ms);
/* Client: the transport opened; framed = the server picked SB_SESSION_PROTOCOL.
 * Server: a new transport for a new session object (the greeting is
 * written at the next flush; the hello deadline starts). */
SB_EXPORT int sb_session_transport_open(sb_session *s, double now_ms, int framed);
/* One transport message; text = it arrived as a text message. Errors in
 * what the peer sent are not returned: they become SB_SEV_ERROR and
 * SB_SEV_DISCONNECT events. Returns 0 or an sb_err for bad arguments. */
SB_EXPORT int sb_session_recv(sb_session *s, const uint8_t *data, uint32_t n, int text, double now_ms);
/* The transport closed or failed, with its close code (1006 if none). */
SB_EXPORT int sb_session_transport_closed(sb_session *s, double now_ms, int code);
/* Bytes the transport holds unsent (WebSocket.bufferedAmount). */
SB_EXPORT int sb_session_set_buffered(sb_session *s, double bytes);
/* Client: navigator online/offline and page visibility. */
SB_EXPORT int sb_session_network(sb_session *s, double now_ms, int online);
SB_EXPORT int sb_session_visibility(sb_session *s, double now_ms, int visible);
/* Write what is pending (end of a task) and run the timers. */
SB_EXPORT int sb_session_flush(sb_session *s, double now_ms);
/* The single timer fired (early calls are harmless); writes what is due. */
SB_EXPORT int sb_session_tick(sb_session *s, double now_ms);
/* When sb_session_tick has something to do, or -1. */
SB_EXPORT double sb_session_next_deadline(const sb_session *s);
/* Bytes of scratch buffers held (events, batches, frames read and written,
 * their compressors' output): what SB_SO_TRIM_AFTER gives back. */
size_t sb_session_capacity(const sb_session *s);

/* ---- application ---------------------------------------------------------- */

/* Queue a message (flags: SB_FRAME_F_BINARY). Returns its id (>= 1), or
 * SB_E_QUEUE_FULL (reject policy), SB_E_TOO_LARGE (over the frame cap or the
 * whole queue), SB_E_INVALID (channel 1 is the server's), SB_E_CLOSED. A
 * client may write inside it (SB_SO_EARLY_BATCH: a batch this message
 * fills, and timers due), as sb_session_request does: report the
 * transport's buffer first (sb_session_set_buffered) and drain after. */
SB_EXPORT int sb_session_send(sb_session *s, uint32_t channel, int flags, const uint8_t *data, uint32_t n, double now_ms);
/* Server: queue a message another client sent, stamped with its sender
 * (1..255 bytes, the identity the server authenticated: the client cannot
 * forge it) and its offset in the room's log (1..2^32-1, or 0 for none).
 * The client's SB_SEV_MESSAGE carries both. Returns as sb_session_send,
 * except that a session holding its whole window unconfirmed
 * (SB_SO_QUEUE_MAX_COUNT messages, or SB_SO_QUEUE_MAX_BYTES with this one)
 * takes nothing and returns SB_E_QUEUE_FULL: no eviction, no DROP (the host
 * keeps the message and hands it again later). One call per recipient. */
SB_RELAY_EXPORT int sb_session_relay(sb_session *s, uint32_t channel, int flags, double offset, const uint8_t *from, uint32_t nfrom, const uint8_t *data, uint32_t n, double now_ms);
/* Client: a request answered by SB_SEV_RESPONSE or SB_SEV_REQUEST_FAILED
 * with the returned id; timeout_ms <= 0 = no deadline. Delivered to the
 * server's application once, even across reconnects. On channel 1 it is
 * for the server itself (the relay's subscriptions). Latency-bound: it is
 * written at once, as if sb_session_flush followed (report the transport's
 * buffer first). SB_E_BAD_STATE in plain mode, SB_E_QUEUE_FULL when
 * max_requests are waiting. */
SB_EXPORT int sb_session_request(sb_session *s, uint32_t channel, int flags, const uint8_t *data, uint32_t n, double timeout_ms, double now_ms);
/* Client, after sb_session_restore: wait again for the answer to request
 * id (a serialized state keeps the request in the outbox, not that someone
 * waits for it; a shared Socket's new leading tab says which requests of the
 * tabs still wait). timeout_ms <= 0 = no deadline. SB_E_QUEUE_FULL. */
SB_EXPORT int sb_session_expect(sb_session *s, uint32_t id, double timeout_ms, double now_ms);
/* Client: stop waiting for request id (no event follows). */
SB_EXPORT int sb_session_cancel(sb_session *s, uint32_t id);
/* Server: answer request id; is_error: data is {"code","message"} JSON. */
SB_RELAY_EXPORT int sb_session_respond(sb_session *s, uint32_t id, int is_error, int flags, const uint8_t *data, uint32_t n, double now_ms);
/* Server, after SB_SEV_HELLO: this object becomes the session (its id set
 * with sb_session_set_id, a fresh epoch), and the welcome is written. */
SB_RELAY_EXPORT int sb_session_accept(sb_session *s, double now_ms);
/* Server, after SB_SEV_HELLO on `pending`: the existing session s resumes
 * on pending's transport (s's previous transport, if any, gets
 * SB_SEV_DISCONNECT with SB_CLOSE_REPLACED). pending is CLOSED afterwards
 * and should be destroyed; the host now routes that transport to s. */
SB_RELAY_EXPORT int sb_session_takeover(sb_session *s, sb_session *pending, double now_ms);
/* Server: refuse the hello (or drop the transport): close with code and reason. */
SB_RELAY_EXPORT int sb_session_refuse(sb_session *s, int code, const uint8_t *reason, uint32_t n, double now_ms);
/* Client: stop for good (what is queued is written first if open). Server:
 * end the session. */
SB_EXPORT int sb_session_close(sb_session *s, double now_ms, int code);

/* ---- output ----------------------------------------------------------------- */

/* Pop the next event: its type, 0 = none. */
SB_EXPORT int sb_session_next_event(sb_session *s);
SB_EXPORT const sb_session_event *sb_session_event_view(const sb_session *s);
SB_EXPORT const uint8_t *sb_session_event_data(const sb_session *s);

SB_EXPORT int sb_session_state(const sb_session *s);
SB_EXPORT int sb_session_mode(const sb_session *s);
SB_EXPORT double sb_session_stat(const sb_session *s, int which);

/* The same session over plain HTTP, for where a proxy blocks the WebSocket
 * upgrade (docs/protocol.md §13): the server's transport messages come as
 * records of one streaming response, the client's go as records in the
 * bodies of POSTs. A record is a type byte, a 4-byte big-endian length and
 * that many bytes. The request's query names the stream (SB_HTTP_PARAM: "open", or
 * the stream's id with SB_HTTP_SEQ, the POST's number from 1). */
#define SB_HTTP_PARAM "sb_http"
#define SB_HTTP_SEQ "sb_n"
#define SB_HTTP_OPEN "open"
#define SB_HTTP_HEADER 5
#define SB_HTTP_MAX_RECORD 16777216 /* a client reads no longer record (8 MiB messages, with room) */
/* A client packs records into one POST up to this many bytes (a record
 * over it goes alone): below nginx's default client_max_body_size (1 MiB). */
#define SB_HTTP_POST_BYTES 524288
enum sb_http_record {
    SB_HTTP_BINARY = 1,    /* a binary transport message */
    SB_HTTP_TEXT = 2,      /* a text one (UTF-8) */
    SB_HTTP_CLOSE = 3,     /* the end: a 2-byte big-endian close code, then the reason */
    SB_HTTP_READY = 4,     /* server, first: JSON {"id", "maxPost"} (the id names the stream in POSTs) */
    SB_HTTP_KEEPALIVE = 5  /* server: nothing, so that no proxy times a quiet stream out */
};

#endif
