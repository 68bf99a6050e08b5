/*
 * re.h - POSIX extended regular expressions from untrusted input, bounded:
 * glibc's regcomp/regexec go exponential on back-references, stacked
 * repetition operators ("a**") and big or multiplying interval counts, and
 * one such idPattern could freeze a thread for minutes. Used by q (~=),
 * idPattern in queries and subscriptions. Pure; any thread.
 */
#ifndef PL_RE_H
#define PL_RE_H

#include <regex.h>
#include <stddef.h>

#define RE_LEN_MAX 1024
#define RE_DEPTH_MAX 32

/* 0 if pattern is safe to compile and run, else -1 with the reason in why
 * ("uses a back-reference (not supported)", ...). */
int re_check(const char *pattern, char *why, size_t cap);

/* re_check, then regcomp with REG_EXTENDED | REG_NOSUB (| REG_ICASE).
 * 0, or -1 with the reason in why (then re needs no regfree). */
int re_compile(regex_t *re, const char *pattern, int icase, char *why, size_t cap);

#endif
