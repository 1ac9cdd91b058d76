/* store_sqlite: the SQLite backend of the storage interface (store.h). */
#ifndef TD_STORE_STORE_SQLITE_H
#define TD_STORE_STORE_SQLITE_H

#include "store/store.h"

/* store_sqlite_open opens or creates the database file at path and applies
 * migrations up to max_version. */
int store_sqlite_open(const char *path, int max_version, store **out, td_error *e);

/* store_sqlite_latest_version is the number of the newest migration. */
int store_sqlite_latest_version(void);

#endif
