"""Stand-in for the original agent's ``src.database_connector``: the same three methods and
``%s`` placeholders, against the configured database.

For now the database is a SQLite file: ``ARMADA_SQLITE_PATH`` (default ``./armada.db``).
A backend is a class with ``execute(query, params, fetch, commit)``; SQL Server (pymssql,
``SQL_SERVER_*``) is to be added as a second one chosen in ``_backend_from_env``.
"""

import os
import sqlite3
import threading


def _params(args):
    """``post_to_db(q, a, b)`` and ``post_to_db(q, (a, b))`` both mean parameters (a, b)."""
    if len(args) == 1 and isinstance(args[0], (tuple, list, dict)):
        return args[0]
    return tuple(args)


def translate_placeholders(query):
    """pymssql's placeholders to sqlite3's: ``%s`` → ``?`` and ``%(name)s`` → ``:name``
    outside quoted text, ``%%`` → ``%`` everywhere (pymssql formats the whole string)."""
    out, i, quote = [], 0, None
    while i < len(query):
        char = query[i]
        if quote:
            if query.startswith("%%", i):
                out.append("%")
                i += 2
                continue
            out.append(char)
            if char == quote:
                quote = None
            i += 1
        elif char in ("'", '"'):
            quote = char
            out.append(char)
            i += 1
        elif query.startswith("%s", i):
            out.append("?")
            i += 2
        elif query.startswith("%%", i):
            out.append("%")
            i += 2
        elif query.startswith("%(", i) and ")s" in query[i:]:
            end = query.index(")s", i)
            out.append(":" + query[i + 2:end])
            i = end + 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


class SqliteBackend:
    def __init__(self, path):
        self.path = path
        self._connection = sqlite3.connect(path, check_same_thread=False)
        self._lock = threading.Lock()

    def execute(self, query, params, fetch, commit):
        with self._lock:
            cursor = self._connection.cursor()
            try:
                cursor.execute(translate_placeholders(query), params)
                rows = cursor.fetchall() if fetch else None
                if commit:
                    self._connection.commit()
                return rows if fetch else cursor.rowcount
            except BaseException:
                self._connection.rollback()
                raise
            finally:
                cursor.close()

    def close(self):
        self._connection.close()


def _backend_from_env():
    return SqliteBackend(os.environ.get("ARMADA_SQLITE_PATH", "./armada.db"))


class DatabaseConnector:
    def __init__(self, *args, **kwargs):
        self._backend = _backend_from_env()

    def post_to_db(self, query, *args):
        """Runs a statement and commits; returns the number of rows changed."""
        return self._backend.execute(query, _params(args), fetch=False, commit=True)

    def select_from_db(self, query, *args):
        """Runs a query; returns its rows as tuples."""
        return self._backend.execute(query, _params(args), fetch=True, commit=False)

    def select_with_commit_from_db(self, query, *args):
        """Runs a statement that returns rows (``INSERT … RETURNING``) and commits."""
        return self._backend.execute(query, _params(args), fetch=True, commit=True)

    def close(self):
        self._backend.close()
