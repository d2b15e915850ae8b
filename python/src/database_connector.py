"""Stand-in for the original agent's ``src.database_connector``: the same three methods and
``%s`` placeholders, against the configured database.

* ``SQL_SERVER_NAME`` set (with ``SQL_SERVER_DB``, ``SQL_SERVER_USER``, ``SQL_SERVER_PASSWORD``,
  the seed's variables): Microsoft SQL Server through ``pymssql``, as the original did. pymssql
  is installed into the worker's environment the first time it is needed
  (``pip install pymssql``); when that fails the error says so and what to do.
* otherwise: the embedded SQLite file ``ARMADA_SQLITE_PATH`` (default ``./armada.db``), with
  pymssql's placeholders translated to sqlite3's.

A backend is a class with ``execute(query, params, fetch, commit)``, chosen by
``_backend_from_env``. The SQL Server connection is opened on first use and replaced after it
breaks; nothing is retried automatically (a statement may not be safe to run twice).
"""

import importlib
import os
import sqlite3
import subprocess
import sys
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

    def __repr__(self):
        return "SqliteBackend(%r)" % self.path

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


class DatabaseUnavailable(RuntimeError):
    """The configured database cannot be used (driver missing, bad settings)."""


def split_server(name, default_port=1433):
    """``host``, ``host,port`` (ADO style) or ``host:port`` → (host, port), as Armada reads it."""
    for separator in (",", ":"):
        host, found, port = name.rpartition(separator)
        if found and port.strip().isdigit():
            return host.strip(), int(port)
    return name.strip(), default_port


# SQL_SERVER_ENCRYPT → pymssql's (FreeTDS's) encryption setting. FreeTDS encrypts with
# "require" but checks the certificate only when its configuration names a CA file, so "on"
# and "trust" both mean "encrypt everything" here.
ENCRYPTION = {"on": "require", "trust": "require", "off": "off"}


def _install_pymssql():
    """``pip install pymssql`` into this interpreter's environment; (ok, output)."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "pymssql"],
            capture_output=True,
            text=True,
            timeout=600,
        )
    except (OSError, subprocess.SubprocessError) as error:
        return False, str(error)
    return done.returncode == 0, (done.stderr or done.stdout or "").strip()


def import_pymssql(installer=_install_pymssql):
    """pymssql, installed first if it is missing."""
    try:
        return importlib.import_module("pymssql")
    except ImportError:
        pass
    ok, output = installer()
    if ok:
        importlib.invalidate_caches()
        try:
            return importlib.import_module("pymssql")
        except ImportError as error:
            output = "installed, but still not importable: %s" % error
    tail = "\n".join(output.splitlines()[-5:])
    raise DatabaseUnavailable(
        "SQL_SERVER_NAME is set, so DatabaseConnector talks to SQL Server through pymssql, which is not "
        "installed, and `pip install pymssql` failed:\n%s\nAdd pymssql to the project's requirements.txt (or "
        "install it in the agent's image), or unset SQL_SERVER_NAME to use the SQLite file." % tail
    )


class MssqlBackend:
    def __init__(self, server, port, database, user, password, encrypt="on", importer=import_pymssql):
        self.server, self.port, self.database, self.user = server, port, database, user
        self._password = password
        self.encryption = ENCRYPTION.get((encrypt or "on").strip().lower(), "require")
        self._importer = importer
        self._connection = None
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, environ=None, importer=import_pymssql):
        environ = os.environ if environ is None else environ
        missing = [k for k in ("SQL_SERVER_DB", "SQL_SERVER_USER", "SQL_SERVER_PASSWORD") if not environ.get(k)]
        if missing:
            raise DatabaseUnavailable("SQL_SERVER_NAME is set; SQL Server also needs %s" % ", ".join(missing))
        host, port = split_server(environ["SQL_SERVER_NAME"])
        if environ.get("SQL_SERVER_PORT", "").strip().isdigit():
            port = int(environ["SQL_SERVER_PORT"])
        return cls(
            host,
            port,
            environ["SQL_SERVER_DB"],
            environ["SQL_SERVER_USER"],
            environ["SQL_SERVER_PASSWORD"],
            environ.get("SQL_SERVER_ENCRYPT", "on"),
            importer,
        )

    def __repr__(self):
        # Never the password.
        return "MssqlBackend(mssql://%s:%d/%s)" % (self.server, self.port, self.database)

    def _connect(self):
        pymssql = self._importer()
        options = dict(server=self.server, port=str(self.port), user=self.user, password=self._password,
                       database=self.database, login_timeout=15, appname="armada-worker")
        try:
            return pymssql.connect(encryption=self.encryption, **options)
        except TypeError:
            # pymssql before 2.3 has no `encryption`: FreeTDS's configuration decides.
            return pymssql.connect(**options)

    def execute(self, query, params, fetch, commit):
        with self._lock:
            if self._connection is None:
                self._connection = self._connect()
            cursor = self._connection.cursor()
            try:
                # pymssql takes %s / %(name)s itself: the query goes as written.
                cursor.execute(query, params)
                rows = cursor.fetchall() if fetch else None
                if commit:
                    self._connection.commit()
                return rows if fetch else cursor.rowcount
            except BaseException as error:
                try:
                    self._connection.rollback()
                except Exception:
                    pass
                if type(error).__name__ in ("OperationalError", "InterfaceError"):
                    self._drop()  # reconnect on the next call
                raise
            finally:
                try:
                    cursor.close()
                except Exception:
                    pass

    def _drop(self):
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except Exception:
                pass

    def close(self):
        with self._lock:
            self._drop()


def _backend_from_env(environ=None):
    environ = os.environ if environ is None else environ
    if environ.get("SQL_SERVER_NAME", "").strip():
        return MssqlBackend.from_env(environ)
    return SqliteBackend(environ.get("ARMADA_SQLITE_PATH", "./armada.db"))


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
        """Runs a statement that returns rows (``INSERT … OUTPUT``, ``… RETURNING``) and commits."""
        return self._backend.execute(query, _params(args), fetch=True, commit=True)

    def close(self):
        self._backend.close()
