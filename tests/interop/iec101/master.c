/*
 * iec101-master: a small IEC 60870-5-101 master (controlling station) for the ocpp809
 * interop tests, on lib60870-C's CS101_Master API. Built by tests/interop/iec101/build.sh.
 *
 *   iec101-master --device PATH [--baud 9600] [--parity E|N|O] [--mode unbalanced|balanced]
 *                 [--link-address 1] [--link-address-size 1] [--own-address 0]
 *                 [--ca-size 1] [--cot-size 1] [--ioa-size 2] [--originator 0]
 *                 [--ack-timeout-ms 500] [--repeat-timeout-ms 2000] [--link-state-ms 1000]
 *                 [--poll] [--poll-interval-ms 20] [--cmd-timeout-ms 15000]
 *
 * stdin: one command per line (numbered 1, 2, ... in the order read; blank lines and lines
 * starting with '#' are ignored and not numbered):
 *   poll | stop-poll | gi CA [QOI] | ci CA [QCC] | clock CA | read CA IOA |
 *   sc CA IOA 0|1 [select] [time] | setpoint-float CA IOA VALUE [select] [time] |
 *   setpoint-scaled CA IOA VALUE [select] [time] | test-link | raw HEX | quit
 *   ("time" sends the CP56Time2a form: 58 / 63 / 62.)
 *
 * stdout: one JSON object per line, flushed:
 *   {"event":"asdu","type":36,"cot":3,"negative":false,"test":false,"oa":0,"ca":1,"sq":false,
 *    "count":1,"objects":[{"ioa":1001,"value":14.4,"quality":0,"time":1764480000000}]}
 *   {"event":"link","address":1,"state":"available"}      idle|error|busy|available
 *   {"event":"ok","id":N,"cmd":"gi 1"}       the command was handed to the link layer
 *   {"event":"done","id":N,"cmd":"gi 1"}     unbalanced: the link layer has no message
 *                                            pending any more (ACKed, or given up)
 *   {"event":"error","id":N,"cmd":"...","error":"..."}
 *   {"event":"raw","dir":"rx"|"tx","hex":"..."}          with --trace
 *
 * One outgoing message at a time (PEERS.md: "lib60870 unbalanced master holds one outgoing
 * message at a time"): LinkLayerPrimaryUnbalanced_sendConfirmed silently drops a message while
 * another one is pending. So commands are queued here and the next one is handed over only
 * when CS101_Master_isChannelReady() says the previous one has left (ACKed by the slave or
 * given up after the repeat timeout). A command that cannot be handed over within
 * --cmd-timeout-ms gives {"event":"error"} and is dropped. The caller may write commands at
 * any pace; it only has to wait for the application-level answers (ACTCON, ACTTERM, ...).
 *
 * Threads: a reader thread only queues stdin lines. Everything else - CS101_Master_run, the
 * callbacks, sending commands, writing raw bytes - happens on the main thread, so lib60870 is
 * never entered concurrently. (We do not use CS101_Master_start's own worker thread.)
 *
 * Polling (unbalanced): lib60870 only sends a "request class 2 data" (FC 11) when asked by
 * CS101_Master_pollSingleSlave(); it requests class 1 data (FC 10) by itself whenever a
 * response has ACD set. With `poll` (or --poll) the main loop calls pollSingleSlave every
 * --poll-interval-ms whenever the channel is idle and no command is queued, then keeps calling
 * CS101_Master_run (which reads the serial port with a 10 ms timeout and runs the primary
 * link state machine: request link status, reset remote link, send, poll).
 */

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "hal_serial.h" /* before cs101_master.h: it uses SerialPort */
#include "hal_time.h"
#include "cs101_master.h"

/* ------------------------------------------------------------------ output */

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

typedef struct {
    char* buf;
    size_t len;
    size_t cap;
} Str;

static void
str_add(Str* s, const char* fmt, ...)
{
    va_list ap;
    for (;;) {
        size_t room = s->cap - s->len;
        va_start(ap, fmt);
        int n = vsnprintf(s->buf ? s->buf + s->len : NULL, s->buf ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (s->buf && (size_t) n < room) {
            s->len += (size_t) n;
            return;
        }
        size_t cap = s->cap ? s->cap * 2 : 256;
        while (cap < s->len + (size_t) n + 1)
            cap *= 2;
        char* nb = realloc(s->buf, cap);
        if (!nb)
            abort();
        s->buf = nb;
        s->cap = cap;
    }
}

static void
str_json_string(Str* s, const char* v)
{
    str_add(s, "\"");
    for (const unsigned char* p = (const unsigned char*) v; *p; p++) {
        if (*p == '"' || *p == '\\')
            str_add(s, "\\%c", *p);
        else if (*p < 0x20)
            str_add(s, "\\u%04x", *p);
        else
            str_add(s, "%c", *p);
    }
    str_add(s, "\"");
}

static void
str_float(Str* s, double v)
{
    if (isnan(v) || isinf(v))
        str_add(s, "null");
    else
        str_add(s, "%.9g", v);
}

static void
emit(Str* s)
{
    pthread_mutex_lock(&out_lock);
    fwrite(s->buf, 1, s->len, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    pthread_mutex_unlock(&out_lock);
    free(s->buf);
    s->buf = NULL;
    s->len = s->cap = 0;
}

static void
emit_cmd(const char* event, int id, const char* cmd, const char* error)
{
    Str s = {0};
    str_add(&s, "{\"event\":\"%s\",\"id\":%d,\"cmd\":", event, id);
    str_json_string(&s, cmd);
    if (error) {
        str_add(&s, ",\"error\":");
        str_json_string(&s, error);
    }
    str_add(&s, "}");
    emit(&s);
}

static void
emit_log(const char* msg)
{
    Str s = {0};
    str_add(&s, "{\"event\":\"log\",\"msg\":");
    str_json_string(&s, msg);
    str_add(&s, "}");
    emit(&s);
}

/* ------------------------------------------------------------------ decoding */

static void
str_time(Str* s, CP56Time2a t)
{
    if (t == NULL) {
        str_add(s, ",\"time\":null");
        return;
    }
    str_add(s, ",\"time\":%llu,\"time_invalid\":%s,\"summer\":%s",
            (unsigned long long) CP56Time2a_toMsTimestamp(t),
            CP56Time2a_isInvalid(t) ? "true" : "false",
            CP56Time2a_isSummerTime(t) ? "true" : "false");
}

static void
decode_object(Str* s, int type, InformationObject io)
{
    str_add(s, "{\"ioa\":%d", InformationObject_getObjectAddress(io));
    switch (type) {
    case M_SP_NA_1:
    case M_SP_TB_1:
        str_add(s, ",\"value\":%d,\"quality\":%d",
                SinglePointInformation_getValue((SinglePointInformation) io) ? 1 : 0,
                (int) SinglePointInformation_getQuality((SinglePointInformation) io));
        str_time(s, type == M_SP_TB_1
                        ? SinglePointWithCP56Time2a_getTimestamp((SinglePointWithCP56Time2a) io)
                        : NULL);
        break;
    case M_DP_NA_1:
    case M_DP_TB_1:
        str_add(s, ",\"value\":%d,\"quality\":%d",
                (int) DoublePointInformation_getValue((DoublePointInformation) io),
                (int) DoublePointInformation_getQuality((DoublePointInformation) io));
        str_time(s, type == M_DP_TB_1
                        ? DoublePointWithCP56Time2a_getTimestamp((DoublePointWithCP56Time2a) io)
                        : NULL);
        break;
    case M_ME_NB_1:
        str_add(s, ",\"value\":%d,\"quality\":%d",
                MeasuredValueScaled_getValue((MeasuredValueScaled) io),
                (int) MeasuredValueScaled_getQuality((MeasuredValueScaled) io));
        str_time(s, NULL);
        break;
    case M_ME_NC_1:
    case M_ME_TF_1:
        str_add(s, ",\"value\":");
        str_float(s, MeasuredValueShort_getValue((MeasuredValueShort) io));
        str_add(s, ",\"quality\":%d", (int) MeasuredValueShort_getQuality((MeasuredValueShort) io));
        str_time(s, type == M_ME_TF_1 ? MeasuredValueShortWithCP56Time2a_getTimestamp(
                                            (MeasuredValueShortWithCP56Time2a) io)
                                      : NULL);
        break;
    case M_IT_NA_1:
    case M_IT_TB_1: {
        BinaryCounterReading bcr = IntegratedTotals_getBCR((IntegratedTotals) io);
        int seq = BinaryCounterReading_getSequenceNumber(bcr);
        bool cy = BinaryCounterReading_hasCarry(bcr);
        bool ca = BinaryCounterReading_isAdjusted(bcr);
        bool iv = BinaryCounterReading_isInvalid(bcr);
        /* quality: the BCR status octet (bit7 IV, bit6 CA, bit5 CY, bits0-4 sequence) */
        str_add(s,
                ",\"value\":%ld,\"quality\":%d,\"seq\":%d,\"carry\":%s,\"adjusted\":%s,"
                "\"invalid\":%s",
                (long) BinaryCounterReading_getValue(bcr),
                (iv ? 0x80 : 0) | (ca ? 0x40 : 0) | (cy ? 0x20 : 0) | (seq & 0x1f), seq,
                cy ? "true" : "false", ca ? "true" : "false", iv ? "true" : "false");
        str_time(s, type == M_IT_TB_1 ? IntegratedTotalsWithCP56Time2a_getTimestamp(
                                            (IntegratedTotalsWithCP56Time2a) io)
                                      : NULL);
        break;
    }
    case C_SC_NA_1:
    case C_SC_TA_1:
        str_add(s, ",\"value\":%d,\"select\":%s,\"qu\":%d",
                SingleCommand_getState((SingleCommand) io) ? 1 : 0,
                SingleCommand_isSelect((SingleCommand) io) ? "true" : "false",
                SingleCommand_getQU((SingleCommand) io));
        str_time(s, type == C_SC_TA_1 ? SingleCommandWithCP56Time2a_getTimestamp(
                                            (SingleCommandWithCP56Time2a) io)
                                      : NULL);
        break;
    case C_DC_NA_1:
        str_add(s, ",\"value\":%d,\"select\":%s,\"qu\":%d",
                DoubleCommand_getState((DoubleCommand) io),
                DoubleCommand_isSelect((DoubleCommand) io) ? "true" : "false",
                DoubleCommand_getQU((DoubleCommand) io));
        break;
    case C_SE_NB_1:
    case C_SE_TB_1:
        str_add(s, ",\"value\":%d,\"select\":%s,\"ql\":%d",
                SetpointCommandScaled_getValue((SetpointCommandScaled) io),
                SetpointCommandScaled_isSelect((SetpointCommandScaled) io) ? "true" : "false",
                SetpointCommandScaled_getQL((SetpointCommandScaled) io));
        str_time(s, type == C_SE_TB_1 ? SetpointCommandScaledWithCP56Time2a_getTimestamp(
                                            (SetpointCommandScaledWithCP56Time2a) io)
                                      : NULL);
        break;
    case C_SE_NC_1:
    case C_SE_TC_1:
        str_add(s, ",\"value\":");
        str_float(s, SetpointCommandShort_getValue((SetpointCommandShort) io));
        str_add(s, ",\"select\":%s,\"ql\":%d",
                SetpointCommandShort_isSelect((SetpointCommandShort) io) ? "true" : "false",
                SetpointCommandShort_getQL((SetpointCommandShort) io));
        str_time(s, type == C_SE_TC_1 ? SetpointCommandShortWithCP56Time2a_getTimestamp(
                                            (SetpointCommandShortWithCP56Time2a) io)
                                      : NULL);
        break;
    case M_EI_NA_1:
        str_add(s, ",\"value\":%d", (int) EndOfInitialization_getCOI((EndOfInitialization) io));
        break;
    case C_IC_NA_1:
        str_add(s, ",\"value\":%d", (int) InterrogationCommand_getQOI((InterrogationCommand) io));
        break;
    case C_CI_NA_1:
        str_add(s, ",\"value\":%d",
                (int) CounterInterrogationCommand_getQCC((CounterInterrogationCommand) io));
        break;
    case C_RD_NA_1:
        break;
    case C_CS_NA_1:
        str_time(s, ClockSynchronizationCommand_getTime((ClockSynchronizationCommand) io));
        break;
    default:
        break;
    }
    str_add(s, "}");
}

static bool
decoded_type(int type)
{
    switch (type) {
    case M_SP_NA_1: case M_SP_TB_1: case M_DP_NA_1: case M_DP_TB_1: case M_ME_NB_1:
    case M_ME_NC_1: case M_ME_TF_1: case M_IT_NA_1: case M_IT_TB_1: case C_SC_NA_1:
    case C_SC_TA_1: case C_DC_NA_1: case C_SE_NB_1: case C_SE_TB_1: case C_SE_NC_1:
    case C_SE_TC_1: case M_EI_NA_1: case C_IC_NA_1: case C_CI_NA_1: case C_RD_NA_1:
    case C_CS_NA_1:
        return true;
    default:
        return false;
    }
}

static bool
asdu_handler(void* parameter, int address, CS101_ASDU asdu)
{
    (void) parameter;
    int type = (int) CS101_ASDU_getTypeID(asdu);
    int n = CS101_ASDU_getNumberOfElements(asdu);
    Str s = {0};
    str_add(&s,
            "{\"event\":\"asdu\",\"address\":%d,\"type\":%d,\"cot\":%d,\"negative\":%s,"
            "\"test\":%s,\"oa\":%d,\"ca\":%d,\"sq\":%s,\"count\":%d",  /* oa -1: COT size 1 */
            address, type, (int) CS101_ASDU_getCOT(asdu),
            CS101_ASDU_isNegative(asdu) ? "true" : "false",
            CS101_ASDU_isTest(asdu) ? "true" : "false", CS101_ASDU_getOA(asdu),
            CS101_ASDU_getCA(asdu), CS101_ASDU_isSequence(asdu) ? "true" : "false", n);
    str_add(&s, ",\"decoded\":%s,\"objects\":[", decoded_type(type) ? "true" : "false");
    if (decoded_type(type)) {
        for (int i = 0; i < n; i++) {
            InformationObject io = CS101_ASDU_getElement(asdu, i);
            if (io == NULL) {
                str_add(&s, "%s{\"error\":\"undecodable element %d\"}", i ? "," : "", i);
                break;
            }
            if (i)
                str_add(&s, ",");
            decode_object(&s, type, io);
            InformationObject_destroy(io);
        }
    }
    str_add(&s, "],\"payload\":\"");
    uint8_t* p = CS101_ASDU_getPayload(asdu);
    int plen = CS101_ASDU_getPayloadSize(asdu);
    for (int i = 0; p && i < plen; i++)
        str_add(&s, "%02x", p[i]);
    str_add(&s, "\"}");
    emit(&s);
    return true;
}

static const char*
state_name(LinkLayerState st)
{
    switch (st) {
    case LL_STATE_IDLE: return "idle";
    case LL_STATE_ERROR: return "error";
    case LL_STATE_BUSY: return "busy";
    case LL_STATE_AVAILABLE: return "available";
    default: return "unknown";
    }
}

static void
link_handler(void* parameter, int address, LinkLayerState st)
{
    (void) parameter;
    Str s = {0};
    str_add(&s, "{\"event\":\"link\",\"address\":%d,\"state\":\"%s\"}", address, state_name(st));
    emit(&s);
}

static void
raw_handler(void* parameter, uint8_t* msg, int size, bool sent)
{
    (void) parameter;
    Str s = {0};
    str_add(&s, "{\"event\":\"raw\",\"dir\":\"%s\",\"hex\":\"", sent ? "tx" : "rx");
    for (int i = 0; i < size; i++)
        str_add(&s, "%02x", msg[i]);
    str_add(&s, "\"}");
    emit(&s);
}

/* ------------------------------------------------------------------ command queue */

typedef struct Cmd {
    struct Cmd* next;
    int id;
    uint64_t queued_ms;
    char line[];
} Cmd;

static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static Cmd* q_head = NULL;
static Cmd* q_tail = NULL;
static volatile bool stdin_eof = false;

static void*
reader_thread(void* arg)
{
    (void) arg;
    char* line = NULL;
    size_t cap = 0;
    ssize_t n;
    int id = 0;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' '))
            line[--n] = 0;
        char* p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == 0 || *p == '#')
            continue;
        Cmd* c = malloc(sizeof(Cmd) + strlen(p) + 1);
        if (!c)
            abort();
        c->next = NULL;
        c->id = ++id;
        c->queued_ms = Hal_getMonotonicTimeInMs();
        strcpy(c->line, p);
        pthread_mutex_lock(&q_lock);
        if (q_tail)
            q_tail->next = c;
        else
            q_head = c;
        q_tail = c;
        pthread_mutex_unlock(&q_lock);
    }
    free(line);
    stdin_eof = true;
    return NULL;
}

static Cmd*
q_peek(void)
{
    pthread_mutex_lock(&q_lock);
    Cmd* c = q_head;
    pthread_mutex_unlock(&q_lock);
    return c;
}

static void
q_pop(void)
{
    pthread_mutex_lock(&q_lock);
    Cmd* c = q_head;
    if (c) {
        q_head = c->next;
        if (!q_head)
            q_tail = NULL;
    }
    pthread_mutex_unlock(&q_lock);
    free(c);
}

/* ------------------------------------------------------------------ options */

static struct {
    const char* device;
    int baud;
    char parity;
    bool balanced;
    int link_address;
    int link_address_size;
    int own_address;
    int ca_size, cot_size, ioa_size, originator;
    int ack_timeout_ms, repeat_timeout_ms, link_state_ms;
    bool poll;
    int poll_interval_ms;
    int cmd_timeout_ms;
    bool trace;
} opt = {
    .device = NULL, .baud = 9600, .parity = 'E', .balanced = false, .link_address = 1,
    .link_address_size = 1, .own_address = 0, .ca_size = 1, .cot_size = 1, .ioa_size = 2,
    .originator = 0, .ack_timeout_ms = 500, .repeat_timeout_ms = 2000, .link_state_ms = 1000,
    .poll = false, .poll_interval_ms = 20, .cmd_timeout_ms = 15000, .trace = false,
};

static void
usage(const char* msg)
{
    fprintf(stderr, "iec101-master: %s\n(see the comment at the top of master.c)\n", msg);
    exit(2);
}

static int
int_arg(const char* name, const char* v)
{
    char* end;
    errno = 0;
    long x = strtol(v, &end, 0);
    if (errno || *end || end == v) {
        char m[200];
        snprintf(m, sizeof m, "bad number for %s: %s", name, v);
        usage(m);
    }
    return (int) x;
}

static void
parse_args(int argc, char** argv)
{
    for (int i = 1; i < argc; i++) {
        const char* a = argv[i];
        const char* v = (i + 1 < argc) ? argv[i + 1] : NULL;
#define TAKE() do { if (!v) usage("missing value"); i++; } while (0)
        if (!strcmp(a, "--device")) { TAKE(); opt.device = v; }
        else if (!strcmp(a, "--baud")) { TAKE(); opt.baud = int_arg(a, v); }
        else if (!strcmp(a, "--parity")) {
            TAKE();
            char c = (char) (v[0] & ~0x20);
            if (c != 'E' && c != 'N' && c != 'O')
                usage("--parity must be E, N or O");
            opt.parity = c;
        }
        else if (!strcmp(a, "--mode")) {
            TAKE();
            if (!strcmp(v, "balanced")) opt.balanced = true;
            else if (!strcmp(v, "unbalanced")) opt.balanced = false;
            else usage("--mode must be unbalanced or balanced");
        }
        else if (!strcmp(a, "--link-address")) { TAKE(); opt.link_address = int_arg(a, v); }
        else if (!strcmp(a, "--link-address-size")) { TAKE(); opt.link_address_size = int_arg(a, v); }
        else if (!strcmp(a, "--own-address")) { TAKE(); opt.own_address = int_arg(a, v); }
        else if (!strcmp(a, "--ca-size")) { TAKE(); opt.ca_size = int_arg(a, v); }
        else if (!strcmp(a, "--cot-size")) { TAKE(); opt.cot_size = int_arg(a, v); }
        else if (!strcmp(a, "--ioa-size")) { TAKE(); opt.ioa_size = int_arg(a, v); }
        else if (!strcmp(a, "--originator")) { TAKE(); opt.originator = int_arg(a, v); }
        else if (!strcmp(a, "--ack-timeout-ms")) { TAKE(); opt.ack_timeout_ms = int_arg(a, v); }
        else if (!strcmp(a, "--repeat-timeout-ms")) { TAKE(); opt.repeat_timeout_ms = int_arg(a, v); }
        else if (!strcmp(a, "--link-state-ms")) { TAKE(); opt.link_state_ms = int_arg(a, v); }
        else if (!strcmp(a, "--poll-interval-ms")) { TAKE(); opt.poll_interval_ms = int_arg(a, v); }
        else if (!strcmp(a, "--cmd-timeout-ms")) { TAKE(); opt.cmd_timeout_ms = int_arg(a, v); }
        else if (!strcmp(a, "--poll")) opt.poll = true;
        else if (!strcmp(a, "--trace")) opt.trace = true;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) usage("usage");
        else {
            char m[200];
            snprintf(m, sizeof m, "unknown argument %s", a);
            usage(m);
        }
#undef TAKE
    }
    if (!opt.device)
        usage("--device is required");
    if (opt.link_address_size < 0 || opt.link_address_size > 2)
        usage("--link-address-size must be 0, 1 or 2");
    if (opt.link_address_size == 0 && !opt.balanced)
        usage("--link-address-size 0 is only allowed in balanced mode");
}

/* ------------------------------------------------------------------ commands */

static CS101_Master master;
static SerialPort port;
static bool polling;
static bool running = true;

/* parse "CA IOA VALUE [select] [time]"-style arguments */
static int
split(char* line, char** tok, int max)
{
    int n = 0;
    char* save = NULL;
    for (char* t = strtok_r(line, " \t", &save); t && n < max; t = strtok_r(NULL, " \t", &save))
        tok[n++] = t;
    return n;
}

static bool
parse_long(const char* s, long* out)
{
    char* end;
    errno = 0;
    long v = strtol(s, &end, 0);
    if (errno || *end || end == s)
        return false;
    *out = v;
    return true;
}

static bool
parse_flags(char** tok, int from, int n, bool* select, bool* with_time)
{
    *select = false;
    *with_time = false;
    for (int i = from; i < n; i++) {
        if (!strcmp(tok[i], "select")) *select = true;
        else if (!strcmp(tok[i], "execute")) *select = false;
        else if (!strcmp(tok[i], "time")) *with_time = true;
        else return false;
    }
    return true;
}

static void
now_cp56(struct sCP56Time2a* t)
{
    CP56Time2a_createFromMsTimestamp(t, Hal_getTimeInMs());
}

/* Does this command put an ASDU into the link layer (and so must wait for a free channel)? */
static bool
needs_channel(const char* line)
{
    return strncmp(line, "poll", 4) && strncmp(line, "stop-poll", 9) && strncmp(line, "raw", 3)
           && strncmp(line, "quit", 4);
}

static void
hex_write(const char* hex, int id, const char* orig)
{
    uint8_t buf[1024];
    int n = 0;
    const char* p = hex;
    while (*p) {
        if (*p == ' ' || *p == ':' || *p == '\t') {
            p++;
            continue;
        }
        unsigned v;
        if (!p[1] || sscanf(p, "%2x", &v) != 1 || n >= (int) sizeof buf) {
            emit_cmd("error", id, orig, "bad hex");
            return;
        }
        buf[n++] = (uint8_t) v;
        p += 2;
    }
    int w = SerialPort_write(port, buf, 0, n);
    if (w != n) {
        emit_cmd("error", id, orig, "serial write failed");
        return;
    }
    emit_cmd("ok", id, orig, NULL);
}

/* Execute one command; returns true if it handed an ASDU to the link layer. */
static bool
execute(Cmd* c)
{
    char line[1024];
    snprintf(line, sizeof line, "%s", c->line);
    char* tok[16];
    int n = split(line, tok, 16);
    const char* cmd = tok[0];
    long a1 = 0, a2 = 0;
    bool sel = false, tim = false;
    struct sCP56Time2a ts;

    if (!strcmp(cmd, "quit")) {
        running = false;
        emit_cmd("ok", c->id, c->line, NULL);
        return false;
    }
    if (!strcmp(cmd, "poll")) {
        if (opt.balanced) {
            emit_cmd("error", c->id, c->line, "poll is for unbalanced mode");
            return false;
        }
        polling = true;
        emit_cmd("ok", c->id, c->line, NULL);
        return false;
    }
    if (!strcmp(cmd, "stop-poll")) {
        polling = false;
        emit_cmd("ok", c->id, c->line, NULL);
        return false;
    }
    if (!strcmp(cmd, "raw")) {
        const char* hex = c->line + 3;
        while (*hex == ' ')
            hex++;
        hex_write(hex, c->id, c->line);
        return false;
    }
    if (!strcmp(cmd, "test-link")) {
        CS101_Master_sendLinkLayerTestFunction(master);
        emit_cmd("ok", c->id, c->line, NULL);
        return true;
    }
    if (n < 2 || !parse_long(tok[1], &a1)) {
        emit_cmd("error", c->id, c->line, "expected: COMMAND CA ...");
        return false;
    }
    int ca = (int) a1;
    if (!strcmp(cmd, "gi")) {
        long qoi = IEC60870_QOI_STATION;
        if (n > 2 && !parse_long(tok[2], &qoi)) {
            emit_cmd("error", c->id, c->line, "usage: gi CA [QOI]");
            return false;
        }
        CS101_Master_sendInterrogationCommand(master, CS101_COT_ACTIVATION, ca, (uint8_t) qoi);
    }
    else if (!strcmp(cmd, "ci")) {
        long qcc = IEC60870_QCC_RQT_GENERAL;
        if (n > 2 && !parse_long(tok[2], &qcc)) {
            emit_cmd("error", c->id, c->line, "usage: ci CA [QCC]");
            return false;
        }
        CS101_Master_sendCounterInterrogationCommand(master, CS101_COT_ACTIVATION, ca,
                                                     (uint8_t) qcc);
    }
    else if (!strcmp(cmd, "clock")) {
        now_cp56(&ts);
        CS101_Master_sendClockSyncCommand(master, ca, &ts);
    }
    else if (!strcmp(cmd, "read")) {
        if (n != 3 || !parse_long(tok[2], &a2)) {
            emit_cmd("error", c->id, c->line, "usage: read CA IOA");
            return false;
        }
        CS101_Master_sendReadCommand(master, ca, (int) a2);
    }
    else if (!strcmp(cmd, "sc") || !strcmp(cmd, "setpoint-float")
             || !strcmp(cmd, "setpoint-scaled")) {
        if (n < 4 || !parse_long(tok[2], &a2) || !parse_flags(tok, 4, n, &sel, &tim)) {
            emit_cmd("error", c->id, c->line, "usage: CMD CA IOA VALUE [select] [time]");
            return false;
        }
        int ioa = (int) a2;
        InformationObject io = NULL;
        if (tim)
            now_cp56(&ts);
        if (!strcmp(cmd, "sc")) {
            long v;
            if (!parse_long(tok[3], &v) || (v != 0 && v != 1)) {
                emit_cmd("error", c->id, c->line, "sc value must be 0 or 1");
                return false;
            }
            io = tim ? (InformationObject) SingleCommandWithCP56Time2a_create(NULL, ioa, v == 1,
                                                                              sel, 0, &ts)
                     : (InformationObject) SingleCommand_create(NULL, ioa, v == 1, sel, 0);
        }
        else if (!strcmp(cmd, "setpoint-float")) {
            char* end;
            float v = strtof(tok[3], &end);
            if (*end || end == tok[3]) {
                emit_cmd("error", c->id, c->line, "bad float value");
                return false;
            }
            io = tim ? (InformationObject) SetpointCommandShortWithCP56Time2a_create(NULL, ioa, v,
                                                                                     sel, 0, &ts)
                     : (InformationObject) SetpointCommandShort_create(NULL, ioa, v, sel, 0);
        }
        else {
            long v;
            if (!parse_long(tok[3], &v) || v < -32768 || v > 32767) {
                emit_cmd("error", c->id, c->line, "scaled value must be -32768..32767");
                return false;
            }
            io = tim ? (InformationObject) SetpointCommandScaledWithCP56Time2a_create(
                           NULL, ioa, (int) v, sel, 0, &ts)
                     : (InformationObject) SetpointCommandScaled_create(NULL, ioa, (int) v, sel,
                                                                        0);
        }
        if (!io) {
            emit_cmd("error", c->id, c->line, "cannot create information object");
            return false;
        }
        CS101_Master_sendProcessCommand(master, CS101_COT_ACTIVATION, ca, io);
        InformationObject_destroy(io);
    }
    else {
        emit_cmd("error", c->id, c->line, "unknown command");
        return false;
    }
    emit_cmd("ok", c->id, c->line, NULL);
    return true;
}

/* ------------------------------------------------------------------ main */

int
main(int argc, char** argv)
{
    parse_args(argc, argv);
    polling = opt.poll;

    port = SerialPort_create(opt.device, opt.baud, 8, opt.parity, 1);
    if (!port || !SerialPort_open(port)) {
        fprintf(stderr, "iec101-master: cannot open %s: %s\n", opt.device, strerror(errno));
        return 1;
    }

    struct sLinkLayerParameters ll = {
        .addressLength = opt.link_address_size,
        .timeoutForAck = opt.ack_timeout_ms,
        .timeoutRepeat = opt.repeat_timeout_ms,
        .useSingleCharACK = true,
        .timeoutLinkState = opt.link_state_ms,
    };
    struct sCS101_AppLayerParameters al = {
        .sizeOfTypeId = 1,
        .sizeOfVSQ = 1,
        .sizeOfCOT = opt.cot_size,
        .originatorAddress = opt.originator,
        .sizeOfCA = opt.ca_size,
        .sizeOfIOA = opt.ioa_size,
        .maxSizeOfASDU = 249,
    };

    master = CS101_Master_create(port, &ll, &al,
                                 opt.balanced ? IEC60870_LINK_LAYER_BALANCED
                                              : IEC60870_LINK_LAYER_UNBALANCED);
    if (!master) {
        fprintf(stderr, "iec101-master: CS101_Master_create failed\n");
        return 1;
    }
    CS101_Master_setASDUReceivedHandler(master, asdu_handler, NULL);
    CS101_Master_setLinkLayerStateChanged(master, link_handler, NULL);
    if (opt.trace)
        CS101_Master_setRawMessageHandler(master, raw_handler, NULL);
    if (opt.balanced) {
        CS101_Master_setOwnAddress(master, opt.own_address);
        CS101_Master_useSlaveAddress(master, opt.link_address);
    }
    else {
        CS101_Master_useSlaveAddress(master, opt.link_address);
        CS101_Master_addSlave(master, opt.link_address);
    }

    pthread_t reader;
    if (pthread_create(&reader, NULL, reader_thread, NULL) != 0) {
        fprintf(stderr, "iec101-master: cannot start the stdin reader\n");
        return 1;
    }
    pthread_detach(reader);

    {
        char m[256];
        snprintf(m, sizeof m, "started device=%s mode=%s link_address=%d las=%d ca=%d cot=%d ioa=%d",
                 opt.device, opt.balanced ? "balanced" : "unbalanced", opt.link_address,
                 opt.link_address_size, opt.ca_size, opt.cot_size, opt.ioa_size);
        emit_log(m);
    }

    int in_flight_id = 0; /* the command whose ASDU the link layer still holds (unbalanced) */
    char in_flight_line[1024] = "";
    uint64_t last_poll = 0;

    while (running) {
        CS101_Master_run(master);
        uint64_t now = Hal_getMonotonicTimeInMs();

        bool ready = opt.balanced ? true : CS101_Master_isChannelReady(master, opt.link_address);

        if (in_flight_id && ready) {
            emit_cmd("done", in_flight_id, in_flight_line, NULL);
            in_flight_id = 0;
        }

        Cmd* c = q_peek();
        if (c) {
            if (!needs_channel(c->line)) {
                execute(c);
                q_pop();
            }
            else if (ready && in_flight_id == 0) {
                bool handed = execute(c);
                if (handed && !opt.balanced) {
                    in_flight_id = c->id;
                    snprintf(in_flight_line, sizeof in_flight_line, "%s", c->line);
                }
                q_pop();
            }
            else if (now - c->queued_ms > (uint64_t) opt.cmd_timeout_ms) {
                emit_cmd("error", c->id, c->line,
                         "timeout: the link layer did not become free (link down?)");
                q_pop();
            }
        }
        else if (stdin_eof) {
            running = false;
        }
        else if (polling && !opt.balanced && ready && in_flight_id == 0
                 && now - last_poll >= (uint64_t) opt.poll_interval_ms) {
            CS101_Master_pollSingleSlave(master, opt.link_address);
            last_poll = now;
        }
    }

    CS101_Master_destroy(master);
    SerialPort_close(port);
    SerialPort_destroy(port);
    return 0;
}
