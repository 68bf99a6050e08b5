/*
 * sqlite_ceiling.c - the batch-upsert ceiling: how fast plain SQLite stores
 * the same documents the hub is sent.
 *
 * Reads the first N records of the file bench/gen.py writes (fixed-length
 * records: entity JSON, space padding, ','), and upserts each document into a
 * fresh database with one prepared statement
 *     INSERT INTO entities(id, doc) VALUES(?, ?)
 *         ON CONFLICT(id) DO UPDATE SET doc = excluded.doc
 * in WAL mode with synchronous=NORMAL, 10,000 rows per transaction.  No JSON
 * parsing, no indexes beyond the primary key: what is left is the storage
 * engine's cost of the same bytes, which no hub built on it can beat.
 *
 * Two phases, like the hub's two batch-upsert figures: "load" upserts the N
 * documents into the empty table (all inserts); "steady" then upserts them
 * again, cycling from the first, for at least MIN_SECONDS (all updates of
 * existing rows; 0 skips it).  The file is mapped read-only and faulted in
 * before the clock starts, so the figures time the upserts only.  Prints
 *     RESULT phase=load entities=N seconds=S rate=R cpu_us_per_entity=C
 *     RESULT phase=steady entities=M seconds=S rate=R cpu_us_per_entity=C
 * (C from getrusage: user+system time of this process over the entities).
 *
 * usage: sqlite_ceiling FILE RECORD_LEN N DB MIN_SECONDS [normal|full]
 *   "full" sets synchronous=FULL (what the hub's --durability full matches).
 * Single-threaded; exits non-zero with a message on any error.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PER_TXN 10000
#define ID_PREFIX "{\"id\":\""

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "sqlite_ceiling: %s: %s\n", sql, msg ? msg : "?");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/* One record: the document is the record less its trailing ',' and spaces;
 * the id is the string after the leading {"id":" that gen.py puts first. */
static int split_record(const char *rec, size_t rec_len, const char **id, int *id_len, int *doc_len)
{
    size_t n = rec_len;
    while (n > 0 && (rec[n - 1] == ',' || rec[n - 1] == ' '))
        n--;
    size_t pre = sizeof(ID_PREFIX) - 1;
    if (n <= pre || memcmp(rec, ID_PREFIX, pre) != 0)
        return -1;
    const char *end = memchr(rec + pre, '"', n - pre);
    if (end == NULL)
        return -1;
    *id = rec + pre;
    *id_len = (int)(end - *id);
    *doc_len = (int)n;
    return 0;
}

/* Upserts records [first, first + n) modulo count, PER_TXN per transaction,
 * stopping early (at a transaction boundary) once min_seconds have passed if
 * min_seconds > 0; prints the RESULT line for the phase. */
static int run_phase(sqlite3 *db, sqlite3_stmt *st, const char *map, long rec_len, long count, long n,
                     double min_seconds, const char *phase)
{
    double t0 = now_s(), c0 = cpu_s();
    long i = 0;
    for (; i < n; i++) {
        const char *rec = map + (size_t)(i % count) * (size_t)rec_len, *id;
        int id_len, doc_len;
        if (split_record(rec, (size_t)rec_len, &id, &id_len, &doc_len) != 0) {
            fprintf(stderr, "sqlite_ceiling: record %ld is not a gen.py record\n", i % count);
            return -1;
        }
        if (i % PER_TXN == 0) {
            if (min_seconds > 0 && now_s() - t0 >= min_seconds)
                break;
            if (exec(db, "BEGIN"))
                return -1;
        }
        sqlite3_bind_text(st, 1, id, id_len, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, rec, doc_len, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE) {
            fprintf(stderr, "sqlite_ceiling: upsert: %s\n", sqlite3_errmsg(db));
            return -1;
        }
        sqlite3_reset(st);
        if ((i % PER_TXN == PER_TXN - 1 || i == n - 1) && exec(db, "COMMIT"))
            return -1;
    }
    double secs = now_s() - t0, cpu = cpu_s() - c0;
    printf("RESULT phase=%s entities=%ld seconds=%.3f rate=%.0f cpu_us_per_entity=%.2f\n", phase, i, secs,
           (double)i / secs, cpu * 1e6 / (double)i);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 6 || argc > 7) {
        fprintf(stderr, "usage: sqlite_ceiling FILE RECORD_LEN N DB MIN_SECONDS [normal|full]\n");
        return 2;
    }
    const char *path = argv[1], *db_path = argv[4];
    long rec_len = strtol(argv[2], NULL, 10), count = strtol(argv[3], NULL, 10);
    double min_seconds = strtod(argv[5], NULL);
    int full = argc == 7 && strcmp(argv[6], "full") == 0;
    int fd = -1, rc = 1;
    char *map = MAP_FAILED;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    struct stat sb;

    if (rec_len < 16 || count < 1) {
        fprintf(stderr, "sqlite_ceiling: bad RECORD_LEN or N\n");
        return 2;
    }
    if ((fd = open(path, O_RDONLY)) < 0 || fstat(fd, &sb) != 0) {
        fprintf(stderr, "sqlite_ceiling: %s: %s\n", path, strerror(errno));
        goto out;
    }
    size_t len = (size_t)rec_len * (size_t)count;
    if ((size_t)sb.st_size < len) {
        fprintf(stderr, "sqlite_ceiling: %s holds fewer than %ld records\n", path, count);
        goto out;
    }
    map = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (map == MAP_FAILED) {
        fprintf(stderr, "sqlite_ceiling: mmap: %s\n", strerror(errno));
        goto out;
    }
    volatile unsigned char sink = 0;
    for (size_t off = 0; off < len; off += 4096)
        sink ^= (unsigned char)map[off];
    (void)sink;

    unlink(db_path);
    if (sqlite3_open(db_path, &db) != SQLITE_OK) {
        fprintf(stderr, "sqlite_ceiling: open %s: %s\n", db_path, sqlite3_errmsg(db));
        goto out;
    }
    if (exec(db, "PRAGMA journal_mode=WAL") || exec(db, full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL") ||
        exec(db, "CREATE TABLE entities(id TEXT PRIMARY KEY, doc TEXT NOT NULL)"))
        goto out;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO entities(id, doc) VALUES(?, ?) "
                           "ON CONFLICT(id) DO UPDATE SET doc = excluded.doc",
                           -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "sqlite_ceiling: prepare: %s\n", sqlite3_errmsg(db));
        goto out;
    }

    if (run_phase(db, st, map, rec_len, count, count, 0, "load") != 0)
        goto out;
    /* a steady phase of at least one transaction, then whole ones until min_seconds */
    if (min_seconds > 0 && run_phase(db, st, map, rec_len, count, LONG_MAX, min_seconds, "steady") != 0)
        goto out;
    rc = 0;
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    if (map != MAP_FAILED)
        munmap(map, len);
    if (fd >= 0)
        close(fd);
    return rc;
}
