/* log: leveled logging to stderr, one line per event.
 *
 * The level is checked before the arguments are evaluated. Lines are
 * `key=value` where they describe an event (OpenSMTPD's delivery log style).
 * Log subscriber ids, never addresses, bodies, passwords or tokens. */
#ifndef TD_UTIL_LOG_H
#define TD_UTIL_LOG_H

enum { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR, LOG_LVL_NONE };

extern int log_level;

void log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* log_set_level_name accepts debug|info|warn|error|none; 0 or TD_EINVAL. */
int log_set_level_name(const char *name);

#define log_debug(...) do { if (log_level <= LOG_LVL_DEBUG) log_write(LOG_LVL_DEBUG, __VA_ARGS__); } while (0)
#define log_info(...) do { if (log_level <= LOG_LVL_INFO) log_write(LOG_LVL_INFO, __VA_ARGS__); } while (0)
#define log_warn(...) do { if (log_level <= LOG_LVL_WARN) log_write(LOG_LVL_WARN, __VA_ARGS__); } while (0)
#define log_error(...) do { if (log_level <= LOG_LVL_ERROR) log_write(LOG_LVL_ERROR, __VA_ARGS__); } while (0)

#endif
